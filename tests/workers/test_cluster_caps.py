"""Receiver caps and the timeout circuit across worker processes, shared through a real Redis: real worker
processes (`flask --app app worker`), a real receiver counting the requests it is answering at once."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Worker

from dispatcher.config import from_mapping
from dispatcher.db import Database
from dispatcher.queueing import enqueue_deliveries
from tests.serving import serve_in_thread
from tests.workers.conftest import (
    FAST,
    Receiver,
    Reply,
    attempt_rows,
    delivery_row,
    make_delivery,
    run_command,
    start_command,
    worker_env,
)
from workers import cluster
from workers.cluster import ClusterSlots
from workers.engine import Engine
from workers.settings import EngineSettings

pytestmark = pytest.mark.processes


class CountingReceiver:
    """Answers 200 after `delay_s`; counts the requests it is answering at once. A request counts from its
    arrival until just before its answer is written, a window inside the sender's own, so the count can
    only be lower than what the senders had in flight, never higher."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with receiver.lock:
                    receiver.now += 1
                    receiver.most = max(receiver.most, receiver.now)
                    receiver.paths.append(self.path)
                time.sleep(receiver.delay_s)
                with receiver.lock:
                    receiver.now -= 1
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        serve_in_thread(self.server)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_receiver() -> Iterator[CountingReceiver]:
    server = CountingReceiver(delay_s=0.3)
    yield server
    server.close()


def test_three_worker_processes_hold_a_receiver_to_its_cap(
    database: Database,
    redis_url: str,
    redis_client: redis.Redis,
    slow_receiver: CountingReceiver,
    tmp_path: Path,
) -> None:
    ids = [make_delivery(database, slow_receiver.url("/pb?d=#deliveryid#"))[0] for _ in range(24)]
    env = worker_env(
        database.url,
        redis_url,
        tmp_path,
        POSTBACK_HOST_CONCURRENCY="2",
        POSTBACK_LEASE_S="6",  # a send waiting for a slot may start up to 2 s after its claim
        POSTBACK_DEFER_S="0.3",
        POSTBACK_PUMP_INTERVAL_S="0.2",
        # A job's claim tops itself up with other due deliveries: with room for 256, the first job could
        # take all 24 and leave the other processes nothing to send (seen once in a full run).
        POSTBACK_MAX_IN_FLIGHT="4",
    )
    processes = [start_command(env, "worker") for _ in range(3)]
    try:
        _wait_for(lambda: Worker.count(connection=redis_client) == 3, 30, "the workers did not start")
        processes.append(start_command(env, "pump"))  # for sends given back after waiting too long
        for n in range(0, len(ids), 2):  # 12 jobs, dealt out among the three
            enqueue_deliveries(redis_client, ids[n : n + 2])
        _wait_for(
            lambda: all(delivery_row(database, i).state == "succeeded" for i in ids), 90, "not all delivered"
        )
    finally:
        _stop(processes)

    senders = {attempt.worker for i in ids for attempt in attempt_rows(database, i)}
    assert len(senders) >= 2, senders  # several processes sent to the receiver...
    assert slow_receiver.most <= 2  # ...and never more than two requests were in flight
    assert {path.split("=")[1] for path in slow_receiver.paths} == {str(i) for i in ids}
    assert not redis_client.keys(f"{cluster.PREFIX}*")  # every slot given back, no circuit left behind


def test_a_killed_workers_slot_is_freed_within_a_lease(
    database: Database, redis_url: str, redis_client: redis.Redis, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.script["/hang"] = [Reply(delay_s=12)]
    delivery_id, _ = make_delivery(database, receiver.url("/hang"))
    host = f"127.0.0.1:{receiver.port}"
    env = worker_env(database.url, redis_url, tmp_path, POSTBACK_HOST_CONCURRENCY="1")  # total timeout 2 s
    worker = start_command(env, "worker")
    try:
        enqueue_deliveries(redis_client, [delivery_id])
        _wait_for(lambda: len(receiver.hits("/hang")) == 1, 30, "the request never arrived")
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    arrived = time.monotonic()
    [(_, expires_ms)] = redis_client.zrange(cluster.slot_key(host), 0, -1, withscores=True)
    seconds, micros = redis_client.time()
    hold_s = cluster.LEASE_S  # a lease from when it was taken (or last renewed), then no more
    assert 0 < expires_ms - (seconds * 1000 + micros // 1000) <= hold_s * 1000

    another = ClusterSlots(cluster.connect(redis_url), per_host=1, trip_after_timeouts=3, send_s=2)
    assert another.acquire(host) == (None, 0)  # the dead worker's slot still counts
    taken: tuple[str | None, int] | None = (None, 0)
    while taken == (None, 0) and time.monotonic() - arrived < hold_s + 3:
        time.sleep(0.1)
        taken = another.acquire(host)
    freed_after = time.monotonic() - arrived

    assert taken is not None and taken[0] is not None
    assert hold_s - cluster.RENEW_S - 1 < freed_after < hold_s + 1, freed_after


def test_timeouts_seen_by_one_worker_process_limit_another_to_one_slot(
    database: Database, redis_url: str, redis_client: redis.Redis, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.script["/hang"] = [Reply(delay_s=4)]  # past the total timeout of 2 s
    receiver.script["/slow"] = [Reply(delay_s=1)]
    host = f"127.0.0.1:{receiver.port}"
    hanging = [make_delivery(database, receiver.url("/hang"))[0] for _ in range(3)]
    enqueue_deliveries(redis_client, hanging)

    done = run_command(worker_env(database.url, redis_url, tmp_path), "worker", "--burst")

    assert done.returncode == 0, done.stderr
    assert [a.error_class for i in hanging for a in attempt_rows(database, i)] == ["timeout"] * 3
    assert redis_client.get(cluster.timeouts_key(host)) == b"3"
    # Another process, which has seen no timeout itself: the host gets one slot and no line.
    answering = [make_delivery(database, receiver.url("/slow"))[0] for _ in range(4)]
    engine = _engine(database, FAST, redis.Redis.from_url(redis_url))
    try:
        engine.send_batch(answering)
        assert engine.drain(20)
    finally:
        engine.close()

    assert len(receiver.hits("/slow")) == 1
    rows = [delivery_row(database, i) for i in answering]
    assert sorted((row.state, row.attempt_count) for row in rows) == [("pending", 0)] * 3 + [("succeeded", 1)]
    assert not redis_client.exists(cluster.timeouts_key(host))  # its answer closed the circuit for all


def test_with_redis_unreachable_sends_go_on_with_per_process_caps(
    database: Database, slow_receiver: CountingReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="workers.cluster")
    ids = [make_delivery(database, slow_receiver.url("/pb"))[0] for _ in range(4)]
    tuning = replace(FAST, host_concurrency=2, lease_s=12)
    engine = _engine(database, tuning, cluster.connect("redis://127.0.0.1:1/0"))  # nothing listens there
    try:
        engine.send_batch(ids)
        assert engine.drain(20)
    finally:
        engine.close()

    assert [delivery_row(database, i).state for i in ids] == ["succeeded"] * 4
    assert slow_receiver.most == 2
    assert [r.getMessage()[:26] for r in caplog.records] == ["Redis cannot be reached (E"]


def _engine(database: Database, tuning: EngineSettings, client: redis.Redis) -> Engine:
    settings = from_mapping(
        {
            "DATABASE_URL": database.url,
            "SECRET_KEY": "x" * 20,
            "POSTBACK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "DISPATCHER_ENV": "development",  # no REDIS_URL: the engine is given its Redis client
        }
    )
    return Engine(database, settings, tuning, name="another-worker", redis_client=client)


def _wait_for(condition: Callable[[], bool], timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


def _stop(processes: list[Any]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=30)
