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

log = logging.getLogger(__name__)

FIRST_ATTEMPT_QUEUE = "postbacks"
RETRY_QUEUE = "postbacks-retry"
SEND_JOB = "workers.jobs.send_deliveries"
BATCH_SIZE = 50
JOB_TIMEOUT_S = 120


def batch_job_id(delivery_ids: Sequence[int]) -> str:
    """Derived from the content, so handing the same batch over twice is one job, not two."""
    digest = hashlib.sha1(",".join(map(str, sorted(delivery_ids))).encode()).hexdigest()[:20]
    return f"deliver-{digest}"


def enqueue_deliveries(connection: redis.Redis, delivery_ids: Sequence[int], *, retry: bool = False) -> int:
    """Enqueue deliveries in batches, in one pipeline; returns the number of jobs, 0 when Redis is down."""
    if not delivery_ids:
        return 0
    queue = Queue(RETRY_QUEUE if retry else FIRST_ATTEMPT_QUEUE, connection=connection)
    batches = [list(delivery_ids[i : i + BATCH_SIZE]) for i in range(0, len(delivery_ids), BATCH_SIZE)]
    jobs = [
        Queue.prepare_data(
            SEND_JOB,
            args=(batch,),
            job_id=batch_job_id(batch),
            timeout=JOB_TIMEOUT_S,
            result_ttl=0,
            failure_ttl=24 * 3600,
        )
        for batch in batches
    ]
    try:
        with connection.pipeline() as pipe:
            queue.enqueue_many(jobs, pipeline=pipe)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("Redis unavailable; %d deliveries stay pending for the pump: %s", len(delivery_ids), exc)
        return 0
    return len(jobs)
