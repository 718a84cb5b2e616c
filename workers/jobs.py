"""RQ jobs. They take ids (or a filter), never objects, and get their engine from the worker process."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from rq import get_current_job

from dispatcher import backfill
from dispatcher.advertiser import bulk as advertiser_bulk
from dispatcher.queueing import enqueue_deliveries
from dispatcher.replay import ReplayFilter, reopen_matching
from workers import context


def send_deliveries(delivery_ids: list[int]) -> dict[str, int]:
    """Claim and send whichever of these deliveries are due; the others are someone else's or not yet due."""
    return context.engine().send_batch(delivery_ids)


def replay_failed(criteria: Mapping[str, object]) -> dict[str, int]:
    """Bulk replay: re-open every failed delivery matching the filter, in chunks, and queue them."""
    database = context.engine().database
    job = get_current_job()
    reopened, last_id = 0, 0
    while True:
        with database.session() as session:
            ids = reopen_matching(session, ReplayFilter.from_job_args(criteria), after_id=last_id)
        if not ids:
            return {"reopened": reopened}
        reopened, last_id = reopened + len(ids), ids[-1]
        if job is not None:
            enqueue_deliveries(job.connection, ids, retry=True)


def backfill_postback(publisher_id: int, postback_id: int, since_iso: str) -> dict[str, object]:
    """A publisher's "send past transactions": one delivery per matching past event, never two
    (see dispatcher.backfill); progress goes to Redis for the portal's progress bar."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("backfill_postback runs as an RQ job: it reports progress through the job's Redis")
    sessions = context.engine().database.session_factory
    since = datetime.fromisoformat(since_iso)
    return backfill.run(sessions, job.connection, publisher_id, postback_id, since).as_json()


def change_status_matching(entry_id: int) -> dict[str, int]:
    """An advertiser's "approve (decline, reverse) all matching": see dispatcher.advertiser.bulk."""
    job = get_current_job()
    sessions = context.engine().database.session_factory
    return advertiser_bulk.run(sessions, job.connection if job is not None else None, entry_id)
