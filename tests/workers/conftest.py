"""A real local HTTP receiver, rows to deliver, and real worker processes configured through their own env."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from dispatcher.config import from_env, from_mapping
from dispatcher.db import Database
from dispatcher.ledger import handoff
from dispatcher.models import Attempt, Delivery, Postback
from tests.dispatcher import factories
from tests.serving import serve_in_thread
from workers import settings
from workers.engine import Engine, HandOn
from workers.settings import EngineSettings
from workers.worker import run_worker

ROOT = Path(__file__).resolve().parents[2]

# Short schedule so retries happen within a test: 4 attempts, one second apart, no jitter, no 60 s floor.
# The lease is not short: a claimed send that has not started by lease - timeout - 2 s is given back unsent
# (its lease could run out mid-send), and on a loaded CI machine a 1 s margin was missed, leaving a burst
# worker's deliveries pending. Tests of what a lost lease does set a short one themselves.
FAST = EngineSettings(
    retry_schedule_s=(0, 1, 1, 1),
    retry_jitter=0,
    throttle_min_s=0,
    total_timeout_s=2,
    lease_s=12,
    defer_s=0.2,
    rehand_after_s=1,
    pump_interval_s=0.2,
)
FAST_ENV = {
    "POSTBACK_RETRY_SCHEDULE": "0,1,1,1",
    "POSTBACK_RETRY_JITTER": "0",
    "POSTBACK_THROTTLE_MIN_S": "0",
    "POSTBACK_TOTAL_TIMEOUT_S": "2",
    "POSTBACK_LEASE_S": "12",
    "POSTBACK_REHAND_AFTER_S": "1",
}


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int = 0  # the sender's side of the connection: one per kept-alive connection


class Receiver:
    """Answers each path from a script (a list of replies, the last one repeating); records every request."""

    def __init__(self) -> None:
        self.script: dict[str, list[Reply]] = {}
        self.received: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                receiver.handle(self)

            do_POST = do_GET

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = serve_in_thread(self.server)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def hits(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if urlsplit(r.path).path == path]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = urlsplit(handler.path).path
        with self.lock:
            self.received.append(
                Received(
                    handler.command, handler.path, dict(handler.headers), body, handler.client_address[1]
                )
            )
            replies = self.script.get(path) or [Reply()]
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if reply.delay_s:
            time.sleep(reply.delay_s)
        head = [f"HTTP/1.1 {reply.status} Whatever", f"Content-Length: {len(reply.body)}"]
        head += [f"{k}: {v}" for k, v in reply.headers.items()]
        with contextlib.suppress(OSError):  # the client may have given up (timeout tests)
            handler.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + reply.body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def make_delivery(database: Database, url_template: str, **postback_fields: Any) -> tuple[int, int]:
    """A sale with a click and one postback; returns (delivery id, postback id)."""
    with database.session() as session:
        owner = factories.publisher(session)
        shop = factories.program(session)
        clicked = factories.click(session, owner, shop, fobs="trk-1")
        sale = factories.transaction(session, owner, shop, click_pk=clicked.id)
        happened = factories.event(session, sale)
        hook = Postback(publisher_id=owner.id, url_template=url_template, **postback_fields)
        session.add(hook)
        session.flush()
        row = factories.delivery(session, hook, happened)
        return row.id, hook.id


def delivery_row(database: Database, delivery_id: int) -> Delivery:
    with database.session() as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        session.expunge(row)
        return row


def attempt_rows(database: Database, delivery_id: int) -> list[Attempt]:
    with database.session() as session:
        rows = list(
            session.scalars(
                select(Attempt).where(Attempt.delivery_id == delivery_id).order_by(Attempt.number)
            )
        )
        session.expunge_all()
        return rows


def postback_row(database: Database, postback_id: int) -> Postback:
    with database.session() as session:
        row = session.get(Postback, postback_id)
        assert row is not None
        session.expunge(row)
        return row


def make_engine(
    database: Database,
    tuning: EngineSettings = FAST,
    allowed: str = "127.0.0.0/8",
    hand_on: HandOn | None = None,
) -> Engine:
    settings = from_mapping(
        {
            "DATABASE_URL": database.url,
            "SECRET_KEY": "x" * 20,
            "POSTBACK_ALLOWED_NETWORKS": allowed,
            "DISPATCHER_ENV": "development",  # no REDIS_URL: the engine is given its Redis, if any
        }
    )
    return Engine(database, settings, tuning, name="test-worker", hand_on=hand_on)


def send_now(engine: Engine, *delivery_ids: int) -> None:
    """One job's worth of work, waited for until its outcomes are in the database."""
    engine.send_batch(list(delivery_ids))
    assert engine.drain(30), "sends did not settle"


def worker_env(database_url: str, redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a spawned worker or pump: explicit, never this process's os.environ changed."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POSTBACK_", "DATABASE_", "REDIS_"))
    }
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="test-secret-key-that-is-long-enough",
        INSTANCE_PATH=str(tmp_path / "instance"),
        POSTBACK_ALLOWED_NETWORKS="127.0.0.0/8",
        PYTHONPATH=str(ROOT),
        **FAST_ENV,
    )
    env.update(extra)
    return {key: value for key, value in env.items() if value != ""}


def flask_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "app", *args]


def _handed_over() -> None:
    # Sales recorded by this process hand their deliveries to RQ from a background thread: a burst worker
    # started before that thread has sent them would find an empty queue and stop.
    assert handoff.drain(), "the hand-over to RQ did not finish"


def run_command(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    _handed_over()
    return subprocess.run(
        flask_command(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def work_burst(env: dict[str, str]) -> None:
    """What `flask --app app worker --burst` does with `env` (`workers.worker.run_worker`), run in this
    process: the same RQ worker and engine without the second a new Python process takes to import the app.
    The command itself, and the worker as a process, are tested in test_worker_processes.py."""
    _handed_over()
    # RQ's worker takes SIGINT and SIGTERM for its warm shutdown: this process's own come back after it.
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        settled = run_worker(burst=True, resolved=from_env(env), tuning=settings.from_env(env))
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    # A send still running would write its outcome later, into the next test's tables.
    assert settled, "the worker's sends did not settle"


def start_command(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        flask_command(*args), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
