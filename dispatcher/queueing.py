"""Handing work to RQ by job path. `dispatcher` never imports `workers`; it names the job and its queue.

Redis only carries work: if it is down, the deliveries are already committed as pending rows and the pump
(`flask --app app pump`) hands them to RQ later. So enqueueing never fails the request that recorded a sale.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import redis
from rq import Queue
from rq.job import Job

log = logging.getLogger(__name__)

FIRST_ATTEMPT_QUEUE = "postbacks"
RETRY_QUEUE = "postbacks-retry"
LANES = (FIRST_ATTEMPT_QUEUE, RETRY_QUEUE)
SEND_JOB = "workers.jobs.send_deliveries"
BATCH_SIZE = 50
JOB_TIMEOUT_S = 120
# A job with one of these statuses will still run: handing the same batch over again adds nothing.
# Not "started": that job's worker may have been killed, and RQ only notices long after.
_WAITING = {b"queued", b"deferred", b"scheduled"}


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
    queue = Queue(RETRY_QUEUE if retry else FIRST_ATTEMPT_QUEUE, connection=connection)
    batches = [list(delivery_ids[i : i + BATCH_SIZE]) for i in range(0, len(delivery_ids), BATCH_SIZE)]
    job_ids = [batch_job_id(batch) for batch in batches]
    if new:
        statuses: list[bytes | None] = [None] * len(job_ids)
    else:
        with connection.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hget(Job.key_for(job_id), "status")
            statuses = pipe.execute()
    jobs = [
        Queue.prepare_data(
            SEND_JOB,
            args=(batch,),
            job_id=job_id,
            timeout=JOB_TIMEOUT_S,
            result_ttl=0,
            failure_ttl=24 * 3600,
        )
        for batch, job_id, status in zip(batches, job_ids, statuses, strict=True)
        if status not in _WAITING
    ]
    if jobs:
        with connection.pipeline() as pipe:
            queue.enqueue_many(jobs, pipeline=pipe)
            pipe.execute()
    return len(jobs)
