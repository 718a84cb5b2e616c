"""Deliveries handed to RQ through its public API: jobs rq reads back, ids derived from the deliveries."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import redis
from rq import Queue
from rq.job import Job, JobStatus

from dispatcher.queueing import (
    FIRST_ATTEMPT_QUEUE,
    RESULT_TTL_S,
    RETRY_QUEUE,
    SEND_JOB,
    batch_job_id,
    enqueue_deliveries,
)


def test_a_batchs_job_id_is_derived_from_its_deliveries(redis_client: redis.Redis) -> None:
    assert batch_job_id([9, 7, 8]) == batch_job_id([7, 8, 9]) != batch_job_id([7, 8])
    assert enqueue_deliveries(redis_client, [9, 7, 8], new=True) == 1

    [job] = Queue(FIRST_ATTEMPT_QUEUE, connection=redis_client).get_jobs()
    assert job.id == batch_job_id([7, 8, 9]) and job.args == ([9, 7, 8],)


def test_rq_reads_the_job_back_as_queued_in_its_lane(redis_client: redis.Redis) -> None:
    before = datetime.now(UTC)
    assert enqueue_deliveries(redis_client, list(range(1, 121)), retry=True) == 3  # batches of 50

    queue = Queue(RETRY_QUEUE, connection=redis_client)
    assert queue in Queue.all(connection=redis_client)  # what `rq info` lists
    jobs = [Job.fetch(job_id, connection=redis_client) for job_id in queue.job_ids]
    batches = [list(range(start, min(start + 50, 121))) for start in (1, 51, 101)]
    assert [job.args for job in jobs] == [(batch,) for batch in batches]
    for job in jobs:
        assert job.func_name == SEND_JOB
        assert job.get_status() == JobStatus.QUEUED
        assert job.origin == RETRY_QUEUE
        assert job.timeout == 120
        assert job.enqueued_at is not None
        assert job.enqueued_at.replace(tzinfo=UTC) >= before.replace(microsecond=0)


def test_a_waiting_job_is_not_handed_over_twice(redis_client: redis.Redis) -> None:
    assert enqueue_deliveries(redis_client, [4, 5]) == 1
    assert enqueue_deliveries(redis_client, [5, 4]) == 0
    assert Queue(FIRST_ATTEMPT_QUEUE, connection=redis_client).count == 1


def test_redis_down_hands_over_nothing_and_does_not_raise() -> None:
    client = redis.Redis(port=1, socket_connect_timeout=0.2)
    assert enqueue_deliveries(client, [1, 2], new=True) == 0


def test_a_refused_command_hands_over_nothing_and_the_connection_stays_usable(
    redis_client: redis.Redis,
) -> None:
    queue_key = Queue(FIRST_ATTEMPT_QUEUE, connection=redis_client).key
    redis_client.set(queue_key, "not a list")  # RPUSH fails inside the MULTI: EXEC answers its error

    assert enqueue_deliveries(redis_client, [3], new=True) == 0

    redis_client.delete(queue_key)
    assert enqueue_deliveries(redis_client, [3], new=True) == 1
    assert Queue(FIRST_ATTEMPT_QUEUE, connection=redis_client).job_ids == [batch_job_id([3])]


def test_after_a_refused_command_the_pump_hands_the_batch_over_again(redis_client: redis.Redis) -> None:
    queue_key = Queue(FIRST_ATTEMPT_QUEUE, connection=redis_client).key
    redis_client.set(queue_key, "not a list")
    assert enqueue_deliveries(redis_client, [6], new=True) == 0
    redis_client.delete(queue_key)

    # The pump's path looks for a waiting job first: a hash left "queued" by the failed EXEC hides the batch.
    assert enqueue_deliveries(redis_client, [6]) == 1
    assert Queue(FIRST_ATTEMPT_QUEUE, connection=redis_client).job_ids == [batch_job_id([6])]


def test_a_batch_handed_over_while_its_job_runs_gets_a_job_the_running_ones_clean_up_cannot_delete(
    redis_client: redis.Redis,
) -> None:
    assert enqueue_deliveries(redis_client, [11], new=True) == 1
    queue = Queue(FIRST_ATTEMPT_QUEUE, connection=redis_client)
    running = queue.dequeue_any([queue], None, connection=redis_client)
    assert running is not None
    job, _ = running
    job.set_status(JobStatus.STARTED)  # a worker runs it: it claimed nothing, delivery 11 was not in turn yet

    # Its earlier event settles: the engine hands delivery 11 on while that job still runs.
    assert enqueue_deliveries(redis_client, [11]) == 1
    job.delete()  # the running job ends and is cleaned up (its hash deleted)

    [again] = queue.job_ids
    assert again != batch_job_id([11]) and again.startswith(batch_job_id([11]))
    assert Job.fetch(again, connection=redis_client).args == ([11],)  # still there to run


def test_a_batch_handed_over_just_after_its_job_finished_gets_a_job_that_outlives_the_finished_hash(
    redis_client: redis.Redis,
) -> None:
    """A finished job's hash expires RESULT_TTL_S later: a new job rewriting it under the same id vanished
    from under its queue then, and its deliveries waited for the pump."""
    assert enqueue_deliveries(redis_client, [12], new=True) == 1
    queue = Queue(FIRST_ATTEMPT_QUEUE, connection=redis_client)
    running = queue.dequeue_any([queue], None, connection=redis_client)
    assert running is not None
    job, _ = running
    job.set_status(JobStatus.FINISHED)  # as rq leaves it: finished, expiring RESULT_TTL_S later
    redis_client.expire(job.key, RESULT_TTL_S)

    assert enqueue_deliveries(redis_client, [12]) == 1
    time.sleep(RESULT_TTL_S + 0.2)

    [again] = queue.job_ids
    assert again != batch_job_id([12]) and again.startswith(batch_job_id([12]))
    assert Job.fetch(again, connection=redis_client).args == ([12],)  # still there to run
