"""The hand-over of new deliveries to RQ from a background thread: sales never wait on Redis, the deliveries
of sales recorded meanwhile share one round trip, and nothing offered is lost on a graceful exit."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from sqlalchemy import select

from app import create_app
from dispatcher import queueing
from dispatcher.broker import get_broker
from dispatcher.db import get_db
from dispatcher.ledger import handoff
from dispatcher.models import Base, Delivery
from dispatcher.queueing import FIRST_ATTEMPT_QUEUE
from dispatcher.redis_server import EmbeddedRedis
from tests.conftest import app_settings, exit_code_of
from tests.dispatcher.ledger.conftest import Network, build_network

ROOT = Path(__file__).resolve().parents[3]


def queued_batches(client: redis.Redis) -> list[list[int]]:
    return [list(job.args[0]) for job in Queue(FIRST_ATTEMPT_QUEUE, connection=client).get_jobs()]


class SilentRedis:
    """A TCP port that accepts connections and never answers: Redis hung, or a firewall dropping replies."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        self.accepted: list[socket.socket] = []
        self.connected = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(conn)
            self.connected.set()

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()  # the client's read fails now, rather than at its socket timeout
        self.listener.close()


@pytest.fixture
def paused_sends(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, list[list[int]]]]:
    """The real enqueue to the real Redis, except that the first one waits until the test lets it go: a
    round trip to Redis that takes its time, while the test offers more sales."""
    release = threading.Event()
    sent: list[list[int]] = []
    real = queueing.enqueue_deliveries

    def held(client: redis.Redis, ids: Any, **options: Any) -> int:
        sent.append(list(ids))
        if len(sent) == 1:
            assert release.wait(10)
        return real(client, ids, **options)

    monkeypatch.setattr(handoff, "enqueue_deliveries", held)
    yield release, sent
    release.set()


def wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_sale_is_answered_while_redis_does_not_answer_and_its_delivery_waits_for_the_pump(
    tmp_path: Path, database_url: str
) -> None:
    silent = SilentRedis()
    app = create_app(app_settings(tmp_path, database_url, silent.url))
    Base.metadata.create_all(get_db(app).engine)
    with get_db(app).session() as session:
        ids = build_network(app, session)
    network = Network(app=app, client=app.test_client(), **ids)
    network.postback()
    try:
        body = {"click_id": network.click(), "order_number": "H-1", "sale_amount": "10.00"}
        response = network.report(body)
        # The hand-over is connected and waits for Redis's reply, and the sale has been answered all the same.
        assert silent.connected.wait(5)
        assert response.status_code == 201
        assert not handoff.drain(app, timeout=0.2)
    finally:
        silent.close()
    assert handoff.drain(app)
    with network.session() as session:
        [delivery] = session.scalars(select(Delivery)).all()
        # Pending, and marked as queued when created: the pump hands it over once that is overdue.
        assert (delivery.state, delivery.attempt_count) == ("pending", 0)
        assert delivery.queued_at is not None
    get_db(app).dispose()


def test_sales_recorded_during_a_round_trip_share_the_next_one(
    network: Network,
    redis_client: redis.Redis,
    paused_sends: tuple[threading.Event, list[list[int]]],
) -> None:
    release, sent = paused_sends
    network.postback()
    first = network.sale()
    wait_until(lambda: len(sent) == 1)  # on its way to Redis, held there
    later = [network.sale() for _ in range(3)]
    release.set()
    assert handoff.drain(network.app)

    with network.session() as session:
        by_sale = dict(session.execute(select(Delivery.transaction_id, Delivery.id)).all())
    assert first["deliveries"] == 1 and all(sale["deliveries"] == 1 for sale in later)
    assert len(sent) == 2  # two round trips for four sales
    assert sorted(map(sorted, queued_batches(redis_client))) == sorted(map(sorted, sent))
    assert sorted(id_ for batch in sent for id_ in batch) == sorted(by_sale.values())
    assert len(sent[1]) == 3


def test_past_its_limit_the_hand_over_leaves_new_deliveries_to_the_pump(
    network: Network,
    redis_client: redis.Redis,
    paused_sends: tuple[threading.Event, list[list[int]]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    release, sent = paused_sends
    monkeypatch.setattr(handoff, "MAX_WAITING", 3)
    app = network.app
    assert handoff.hand_over(app, [101]) == 1
    wait_until(lambda: len(sent) == 1)
    assert handoff.hand_over(app, [102, 103, 104]) == 3
    with caplog.at_level(logging.WARNING, logger=handoff.__name__):
        assert handoff.hand_over(app, [105]) == 0
    assert "newer ones are left to the pump" in caplog.text
    release.set()
    assert handoff.drain(app)
    assert sorted(map(sorted, queued_batches(redis_client))) == [[101], [102, 103, 104]]


def test_an_idle_hand_over_thread_ends_and_the_next_sale_starts_another(
    network: Network, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handoff, "IDLE_EXIT_S", 0.05)
    mine = id(get_broker(network.app))
    assert handoff.hand_over(network.app, [201]) == 1
    wait_until(lambda: mine not in handoff._this_process().couriers)  # sent, then idle, then gone
    assert handoff.hand_over(network.app, [202]) == 1
    assert handoff.drain(network.app)
    assert sorted(map(sorted, queued_batches(redis_client))) == [[201], [202]]


EXITING_RIGHT_AFTER_A_SALE = """
import sys
import time
from app import create_app
from dispatcher.ledger import handoff
settings = {"DATABASE_URL": sys.argv[1], "SECRET_KEY": "x" * 32, "INSTANCE_PATH": sys.argv[2]}
settings["DISPATCHER_ENV"] = "development"  # the embedded Redis when no REDIS_URL is given
if sys.argv[3]:
    settings["REDIS_URL"] = sys.argv[3]
app = create_app(settings)
real = handoff.enqueue_deliveries
def slow(*args, **options):
    time.sleep(0.5)  # the thread sends well after the process has begun to exit
    return real(*args, **options)
handoff.enqueue_deliveries = slow
assert handoff.hand_over(app, [301, 302]) == 2
assert handoff.drain(app)  # sent: the embedded server, if used, runs (started before the courier)
assert handoff.hand_over(app, [303]) == 1
"""  # and exits at once: the thread has not sent the second yet


def exit_right_after_a_sale(tmp_path: Path, redis_url: str) -> None:
    database = f"sqlite:///{tmp_path / 'exit.db'}"
    done = subprocess.run(
        [sys.executable, "-c", EXITING_RIGHT_AFTER_A_SALE, database, str(tmp_path / "instance"), redis_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.processes
def test_a_process_that_exits_right_after_a_sale_sends_its_deliveries_first(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    exit_right_after_a_sale(tmp_path, redis_url)

    assert queued_batches(redis_client) == [[301, 302], [303]]


@pytest.mark.processes
def test_with_the_embedded_redis_the_exit_sends_them_before_that_server_stops(tmp_path: Path) -> None:
    exit_right_after_a_sale(tmp_path, "")  # no REDIS_URL: the process starts and stops its own server

    server = EmbeddedRedis(tmp_path / "instance" / "redis")  # the same data, appendonly: started again
    client = redis.Redis.from_url(server.acquire())
    try:
        assert queued_batches(client) == [[301, 302], [303]]
    finally:
        client.close()
        server.stop()


@pytest.mark.processes
def test_a_child_forked_while_the_hand_over_was_busy_hands_over_on_its_own(
    network: Network, redis_client: redis.Redis
) -> None:
    assert handoff.hand_over(network.app, [401]) == 1
    with handoff._this_process().lock:  # as if a courier of this process held it at the moment of fork()
        child = os.fork()
        if child == 0:  # the child: it has no courier thread, and must not wait for the parent's lock
            status = 1
            try:
                taken = handoff.hand_over(network.app, [402])
                status = 0 if taken == 1 and handoff.drain(network.app, timeout=10) else 1
            finally:
                os._exit(status)
    assert exit_code_of(child, "the hand-over's lock") == 0
    assert handoff.drain(network.app)
    assert sorted(map(sorted, queued_batches(redis_client))) == [[401], [402]]


def test_when_the_hand_over_cannot_start_the_sale_is_still_answered_and_left_to_the_pump(
    network: Network, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class NoThreads(threading.Thread):
        def start(self) -> None:
            raise RuntimeError("can't start new thread")  # what Python raises at the process's thread limit

    monkeypatch.setattr(handoff.threading, "Thread", NoThreads)
    network.postback()
    with caplog.at_level(logging.ERROR, logger=handoff.__name__):
        answer = network.report({"click_id": network.click(), "order_number": "T-1", "sale_amount": "5.00"})

    assert answer.status_code == 201 and answer.json is not None and answer.json["deliveries"] == 1
    assert "the pump will send them" in caplog.text
    with network.session() as session:
        [delivery] = session.scalars(select(Delivery)).all()
        assert delivery.state == "pending" and delivery.queued_at is not None


def test_a_lone_sale_is_sent_at_once_and_sales_soon_after_go_together(
    network: Network, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[list[int]] = []
    real = queueing.enqueue_deliveries

    def recorded(client: redis.Redis, ids: Any, **options: Any) -> int:
        sent.append(list(ids))
        return real(client, ids, **options)

    monkeypatch.setattr(handoff, "enqueue_deliveries", recorded)
    monkeypatch.setattr(handoff, "SPACING_S", 1.5)
    app = network.app
    assert handoff.hand_over(app, [601]) == 1
    wait_until(lambda: len(sent) == 1, timeout=1.0)  # idle: not held for the spacing
    assert handoff.hand_over(app, [602]) == 1
    assert handoff.hand_over(app, [603]) == 1  # within the spacing of the first send: they wait for it
    assert handoff.drain(app)

    assert sent == [[601], [602, 603]]
    assert sorted(map(sorted, queued_batches(redis_client))) == [[601], [602, 603]]
