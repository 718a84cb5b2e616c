"""Handing work to RQ by job path. `dispatcher` never imports `workers`; it names the job and its queue.

Redis only carries work: if it is down, the deliveries are already committed as pending rows and the pump
(`flask --app app pump`) hands them to RQ later. So enqueueing never fails the request that recorded a sale.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Sequence

import redis
from rq import Queue
from rq.job import Job
from rq.queue import EnqueueData

log = logging.getLogger(__name__)

FIRST_ATTEMPT_QUEUE = "postbacks"
RETRY_QUEUE = "postbacks-retry"
LANES = (FIRST_ATTEMPT_QUEUE, RETRY_QUEUE)
SEND_JOB = "workers.jobs.send_deliveries"
# Jobs of 100 spread rq's and the claim's cost over twice the deliveries (the 100 ms run about 10% faster in
# one set of rounds); put back to 50 when the plan test failed with them, which then failed with 50 too (a
# bench's database-wide ANALYZE, run by another test, analyzing its tables mid-test, since prevented): to be
# measured again.
BATCH_SIZE = 50
JOB_TIMEOUT_S = 120
FAILURE_TTL_S = 24 * 3600
# A finished job's hash is kept this long, then expired by Redis. Not 0: rq deletes a job kept for 0 s at
# once, with its registry and execution entries, which cost a worker a fifth of rq's CPU per job (2.8 ms
# against 2.2, bench.jobs); expiry costs one command.
RESULT_TTL_S = 1
# A job with one of these statuses will still run: handing the same batch over again adds nothing.
# Not "started": that job's worker may have been killed, and RQ only notices long after.
_WAITING = {b"queued", b"deferred", b"scheduled"}
# A job that runs or has just finished still has its hash, which will be deleted or expire: a new job under
# its id would rewrite the hash but not that fate, and vanish from under its queue. It gets an id of its own.
_ENDING = {b"started", b"finished"}


def batch_job_id(delivery_ids: Sequence[int]) -> str:
    """Derived from the content, so handing the same batch over twice is one job, not two."""
    digest = hashlib.sha1(",".join(map(str, sorted(delivery_ids))).encode()).hexdigest()[:20]
    return f"deliver-{digest}"


def enqueue_deliveries(
    connection: redis.Redis, delivery_ids: Sequence[int], *, retry: bool = False, new: bool = False
) -> int:
    """Enqueue deliveries in batches, in one pipeline; returns the number of jobs, 0 when Redis is down."""
    try:
        return enqueue_or_raise(connection, delivery_ids, retry=retry, new=new)
    except redis.RedisError as exc:
        log.warning("Redis unavailable; %d deliveries stay pending for the pump: %s", len(delivery_ids), exc)
        return 0


def enqueue_by_lane(connection: redis.Redis, deliveries: Sequence[tuple[int, int]]) -> int:
    """(id, attempt_count) pairs: first attempts to the first lane, the others to the retry lane."""
    first = [delivery_id for delivery_id, attempts in deliveries if attempts == 0]
    again = [delivery_id for delivery_id, attempts in deliveries if attempts > 0]
    return enqueue_deliveries(connection, first) + enqueue_deliveries(connection, again, retry=True)


def enqueue_or_raise(
    connection: redis.Redis, delivery_ids: Sequence[int], *, retry: bool = False, new: bool = False
) -> int:
    """The same, raising RedisError (for the pump, which then leaves the deliveries for its next pass).

    `new`: the deliveries were created just now and never handed over, so no job of theirs can be waiting
    and the look-up of earlier jobs is skipped: one round trip to Redis instead of two. Their `queued_at`
    (set when they were created) keeps the pump away until they are overdue; if it hands them over anyway,
    the second job finds nothing to claim.
    """
    if not delivery_ids:
        return 0
    origin = RETRY_QUEUE if retry else FIRST_ATTEMPT_QUEUE
    batches = [list(delivery_ids[i : i + BATCH_SIZE]) for i in range(0, len(delivery_ids), BATCH_SIZE)]
    job_ids = [batch_job_id(batch) for batch in batches]
    if new:
        statuses: list[bytes | None] = [None] * len(job_ids)
    else:
        with connection.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hget(Job.key_for(job_id), "status")
            statuses = pipe.execute()
    wanted = [
        (_beside_ending(job_id) if status in _ENDING else job_id, batch)
        for batch, job_id, status in zip(batches, job_ids, statuses, strict=True)
        if status not in _WAITING
    ]
    if wanted:
        # One MULTI/EXEC (the pipeline is transactional): a job's hash written without its id pushed would
        # read "queued" and keep the pump from handing the batch over again.
        with connection.pipeline() as pipe:
            Queue(origin, connection=connection).enqueue_many(
                [prepared_job(batch, job_id) for job_id, batch in wanted], pipeline=pipe
            )
            try:
                pipe.execute()
            except redis.ResponseError:
                # EXEC does not roll back: a command refused there leaves the others applied, and a hash
                # reading "queued" with its id in no queue would keep the pump from ever handing it over.
                _forget(connection, [Job.key_for(job_id) for job_id, _ in wanted])
                raise
    return len(wanted)


def _beside_ending(job_id: str) -> str:
    """Another id for a batch whose job is running right now or has just finished (the batch is handed over
    again: the engine passing on deliveries that were waiting their turn, or the pump). Under the same id,
    the ending job's clean-up (its hash deleted, or expiring after RESULT_TTL_S) took the new job's hash and
    the new job never ran: the deliveries waited for the pump. A running job's worker may also have been
    killed (RQ notices late), so it cannot count as waiting."""
    return f"{job_id}-{time.time_ns() // 1_000_000:x}"


def _forget(client: redis.Redis, keys: list[str]) -> None:
    # Redis is failing already: the error being raised is the one to report.
    with contextlib.suppress(redis.RedisError):
        client.delete(*keys)


def prepared_job(delivery_ids: Sequence[int], job_id: str) -> EnqueueData:
    """The job that sends these deliveries, for `Queue.enqueue_many`."""
    return Queue.prepare_data(
        SEND_JOB,
        args=(list(delivery_ids),),
        job_id=job_id,
        timeout=JOB_TIMEOUT_S,
        result_ttl=RESULT_TTL_S,
        failure_ttl=FAILURE_TTL_S,
    )
