"""rq's own bookkeeping in our worker: its registration renewed at most every HEARTBEAT_EVERY_S outside a
job's pipeline, and the suspension flag read at most every SUSPENSION_CHECK_EVERY_S, through rq's real work
loop on a real Redis."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.suspension import resume, suspend

from workers import worker as worker_module
from workers.worker import HEARTBEAT_EVERY_S, QueueWorker

JOBS = 30


def _fill(queue: Queue, jobs: int) -> None:
    with queue.connection.pipeline() as pipe:
        queue.enqueue_many([Queue.prepare_data("os.getpid", result_ttl=1)] * jobs, pipeline=pipe)
        pipe.execute()


def _worker(queue: Queue) -> QueueWorker:
    return QueueWorker([queue], connection=queue.connection, stop=threading.Event(), worker_ttl=60)


@pytest.fixture
def renewals(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per registration renewal that reached rq: True if it went inside a pipeline."""
    seen: list[bool] = []
    original = SimpleWorker.heartbeat

    def counted(self: SimpleWorker, timeout: int | None = None, pipeline: Any = None) -> None:
        seen.append(pipeline is not None)
        original(self, timeout, pipeline)

    monkeypatch.setattr(SimpleWorker, "heartbeat", counted)
    return seen


def test_a_burst_of_jobs_renews_the_registration_at_most_once_outside_the_jobs_pipelines(
    redis_client: redis.Redis, renewals: list[bool]
) -> None:
    queue = Queue("postbacks", connection=redis_client)
    _fill(queue, JOBS)

    _worker(queue).work(burst=True, logging_level="WARNING", with_scheduler=False)

    assert queue.count == 0
    assert redis_client.zcard(queue.finished_job_registry.key) == JOBS
    # rq asks for three renewals a job on their own (90 here): the first, if any, went through, the rest
    # fell within the interval after it (or after the suspension check's, which renews in its pipeline).
    # Each job's preparation still sends its own.
    assert renewals.count(False) <= 1
    assert renewals.count(True) >= JOBS


def test_the_registration_is_renewed_again_once_the_interval_has_passed(
    redis_client: redis.Redis, renewals: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = _worker(Queue("postbacks", connection=redis_client))
    worker.register_birth()  # type: ignore[no-untyped-call]

    worker.heartbeat()
    worker.heartbeat()
    assert renewals == [False]
    assert redis_client.ttl(worker.key) > 60  # kept for worker_ttl + 60 s

    monkeypatch.setattr(worker_module, "HEARTBEAT_EVERY_S", 0.0)
    worker.heartbeat()
    assert renewals == [False, False]
    assert HEARTBEAT_EVERY_S < 60  # far inside the registration's life


def test_a_suspended_queue_is_left_alone_by_a_burst_worker(redis_client: redis.Redis) -> None:
    queue = Queue("postbacks", connection=redis_client)
    _fill(queue, 3)
    suspend(redis_client)
    try:
        _worker(queue).work(burst=True, logging_level="WARNING", with_scheduler=False)
        assert queue.count == 3
    finally:
        resume(redis_client)

    _worker(queue).work(burst=True, logging_level="WARNING", with_scheduler=False)
    assert queue.count == 0
