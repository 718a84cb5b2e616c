"""A worker process outlives a Redis restart: rq quits its work loop on a Redis error, and the worker starts
it again once Redis answers (before, every worker process exited: bench.cluster). SIGTERM still stops it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue

from bench.cluster import RedisServer
from dispatcher.db import Database
from dispatcher.queueing import FIRST_ATTEMPT_QUEUE, enqueue_deliveries
from tests.workers.conftest import Receiver, delivery_row, make_delivery, start_command, worker_env

pytestmark = pytest.mark.processes


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a port it keeps across restarts (bench.cluster's)."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_a_worker_keeps_working_after_redis_restarts_and_still_stops_on_sigterm(
    database: Database, receiver: Receiver, own_redis: RedisServer, tmp_path: Path
) -> None:
    worker = start_command(worker_env(database.url, own_redis.url, tmp_path), "worker")
    try:
        first, _ = make_delivery(database, receiver.url("/ok"))
        _deliver(own_redis.url, database, first)

        # Redis goes away while a job runs (as under load): rq's bookkeeping after the job fails and rq quits
        # its loop ("found an unhandled exception, quitting"), where an idle worker's wait would retry.
        assert own_redis.process is not None
        Queue(FIRST_ATTEMPT_QUEUE, connection=redis.Redis.from_url(own_redis.url)).enqueue(
            stop_redis, own_redis.process.pid
        )
        own_redis.process.wait(timeout=20)
        time.sleep(1)
        own_redis.start()  # with its AOF: what was queued is still there (else the pump hands it over)
        second, _ = make_delivery(database, receiver.url("/ok"))
        _deliver(own_redis.url, database, second, timeout_s=40)

        assert worker.poll() is None  # the same process
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=40)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()

    assert worker.returncode == 0, stderr
    assert "starting again" in stderr  # it did quit its loop, and came back


def test_a_worker_waiting_for_redis_stops_at_once_on_sigterm(
    database: Database, receiver: Receiver, own_redis: RedisServer, tmp_path: Path
) -> None:
    worker = start_command(worker_env(database.url, own_redis.url, tmp_path), "worker")
    try:
        first, _ = make_delivery(database, receiver.url("/ok"))
        _deliver(own_redis.url, database, first)
        assert own_redis.process is not None
        Queue(FIRST_ATTEMPT_QUEUE, connection=redis.Redis.from_url(own_redis.url)).enqueue(
            stop_redis, own_redis.process.pid
        )
        own_redis.process.wait(timeout=20)
        time.sleep(4)  # Redis stays down: the worker is in its pauses, asking for it

        asked = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
        took_s = time.monotonic() - asked
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()

    assert worker.returncode == 0, stderr
    assert "starting again" in stderr and "StopRequested" not in stderr, stderr  # rq logs its own tracebacks
    assert took_s < 10, took_s  # not at the end of a pause, nor never


def stop_redis(pid: int) -> None:
    """An RQ job (run by the worker under test): stops its own Redis, and waits until it is gone."""
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def _deliver(redis_url: str, database: Database, delivery_id: int, timeout_s: float = 20) -> None:
    client = redis.Redis.from_url(redis_url)
    enqueue_deliveries(client, [delivery_id])
    _wait_for(lambda: delivery_row(database, delivery_id).state == "succeeded", timeout_s, "never delivered")
    client.close()


def _wait_for(condition: Callable[[], object], timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


def test_a_burst_that_finds_redis_gone_when_its_queues_ran_dry_ends_without_an_error() -> None:
    """After rq's burst loop, the worker looks for jobs its own sends handed on: Redis gone then is the
    end of the burst (the pump hands over what is left), not an error out of the worker."""
    from dispatcher.redis_server import free_port
    from workers.worker import _queued

    gone = redis.Redis(port=free_port(), socket_connect_timeout=0.5)

    assert _queued(gone, [FIRST_ATTEMPT_QUEUE]) is False
