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
from workers.worker import QueueWorker

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


def test_a_burst_of_jobs_renews_the_registration_once_outside_the_jobs_pipelines(
    redis_client: redis.Redis, renewals: list[bool]
) -> None:
    queue = Queue("postbacks", connection=redis_client)
    _fill(queue, JOBS)

    _worker(queue).work(burst=True, logging_level="WARNING", with_scheduler=False)

    assert queue.count == 0
    assert redis_client.zcard(queue.finished_job_registry.key) == JOBS
    # rq asks for three renewals a job on their own (90 here): the first went through, the rest fell within
    # the interval after it. Each job's preparation still sends its own, inside its pipeline.
    assert renewals.count(False) == 1
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


def test_a_renewal_that_failed_does_not_count(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis away: the next renewal, once it is back, goes through rather than waiting out the interval."""
    worker = _worker(Queue("postbacks", connection=redis_client))
    worker.register_birth()  # type: ignore[no-untyped-call]
    written: list[int] = []
    original = SimpleWorker.heartbeat

    def failing_once(self: SimpleWorker, timeout: int | None = None, pipeline: Any = None) -> None:
        if not written:
            written.append(0)
            raise redis.ConnectionError("Redis is away")
        written.append(1)
        original(self, timeout, pipeline)

    monkeypatch.setattr(SimpleWorker, "heartbeat", failing_once)
    with pytest.raises(redis.ConnectionError):
        worker.heartbeat()
    worker.heartbeat()
    assert written == [0, 1]


def test_a_burst_of_jobs_reads_the_suspension_flag_once(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[bool] = []
    original = SimpleWorker.check_for_suspension

    def counted(self: SimpleWorker, burst: bool) -> None:
        checks.append(burst)
        original(self, burst)

    monkeypatch.setattr(SimpleWorker, "check_for_suspension", counted)
    queue = Queue("postbacks", connection=redis_client)
    _fill(queue, JOBS)

    _worker(queue).work(burst=True, logging_level="WARNING", with_scheduler=False)

    assert queue.count == 0
    assert len(checks) <= 2  # rq asks once a job (31 here); a second read only if the burst outlasted 1 s


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
