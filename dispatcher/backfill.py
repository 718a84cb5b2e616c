"""Backfill: deliveries for a postback's past transactions, so a new or fixed postback catches up.

Each transaction event since the chosen time that the postback matches gets one delivery, made by the
outbox (`create_deliveries` with `skip_existing`): a pair that already has a delivery is skipped, and the
unique (postback, event) constraint guarantees it even against a concurrent run. Work goes in batches, each
committed and handed to RQ on its own, with progress kept in Redis for the page's progress bar.

`start` hands the run to the workers as an RQ job (`workers.jobs.backfill_postback`), so a long history never
holds a web request; only when Redis cannot take the job does the request run it itself.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from time import sleep
from typing import Any

import redis
from rq import Queue
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.ledger.outbox import FiredEvent, create_deliveries, trigger_of
from dispatcher.models import Postback, Transaction, TransactionEvent
from dispatcher.models.types import utcnow
from dispatcher.queueing import RETRY_QUEUE, enqueue_deliveries
from dispatcher.validation import FieldError

log = logging.getLogger(__name__)

BATCH = 500
PROGRESS_TTL_S = 7 * 24 * 3600
MAX_DAYS_BACK = 90
BATCH_TRIES = 5
BACKFILL_JOB = "workers.jobs.backfill_postback"
JOB_TIMEOUT_S = 3600


@dataclass(frozen=True)
class BackfillResult:
    since: datetime
    events: int
    created: int

    @property
    def message(self) -> str:
        skipped = self.events - self.created
        return (
            f"Backfill since {self.since:%Y-%m-%d %H:%M} UTC: {self.created} past transaction"
            f"{'s' if self.created != 1 else ''} queued for sending"
            + (f", {skipped} skipped (already sent or not matching)" if skipped else "")
            + "."
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "events": self.events,
            "created": self.created,
            "message": self.message,
        }


def parse_since(raw: str, now: datetime | None = None) -> datetime:
    text = raw.strip()
    try:
        day = date.fromisoformat(text[:10]) if text else None
    except ValueError:
        day = None
    if day is None:
        raise FieldError("since", raw, "must be a date like 2026-11-01")
    since = datetime.combine(day, time(), UTC)
    moment = now or utcnow()
    if since > moment:
        raise FieldError("since", raw, "must not be in the future")
    if (moment - since).days > MAX_DAYS_BACK:
        raise FieldError("since", raw, f"must be within the last {MAX_DAYS_BACK} days")
    return since


@dataclass(frozen=True)
class BackfillStart:
    since: datetime
    job_id: str | None  # None: Redis could not take the job, and `result` is the run done in place
    result: BackfillResult | None = None

    @property
    def message(self) -> str:
        if self.result is not None:
            return self.result.message
        return f"Backfill since {self.since:%Y-%m-%d} UTC started; its progress shows below."

    def as_json(self) -> dict[str, Any]:
        if self.result is not None:
            return {"state": "done", **self.result.as_json()}
        return {
            "state": "queued",
            "since": self.since.isoformat(),
            "job_id": self.job_id,
            "message": self.message,
        }


def start(
    sessions: sessionmaker[Session],
    client: redis.Redis,
    publisher_id: int,
    postback_id: int,
    since: datetime,
) -> BackfillStart:
    """Check the postback, then queue the backfill as a job (or, with Redis down, run it here)."""
    with sessions() as session:
        _check_postback(session, publisher_id, postback_id)
    try:
        job = Queue(RETRY_QUEUE, connection=client).enqueue(
            BACKFILL_JOB,
            args=(publisher_id, postback_id, since.isoformat()),
            job_timeout=JOB_TIMEOUT_S,
            result_ttl=PROGRESS_TTL_S,
        )
    except redis.RedisError as exc:
        log.warning("Redis unavailable, backfill of postback %d runs in the request: %s", postback_id, exc)
        return BackfillStart(since, None, run(sessions, client, publisher_id, postback_id, since))
    _Progress(client, postback_id, since, total=None)
    return BackfillStart(since, str(job.id))


def run(
    sessions: sessionmaker[Session],
    client: redis.Redis,
    publisher_id: int,
    postback_id: int,
    since: datetime,
    *,
    batch: int = BATCH,
) -> BackfillResult:
    """Create the deliveries batch by batch; safe to run again (and concurrently): nothing is sent twice."""
    with sessions() as session:
        _check_postback(session, publisher_id, postback_id)
        total = session.scalar(select(func.count()).select_from(_events(publisher_id, since).subquery())) or 0
    progress = _Progress(client, postback_id, since, int(total))
    events = created = 0
    after_id = 0
    while True:
        rows, new_ids = _batch(sessions, publisher_id, postback_id, since, after_id, batch)
        if not rows:
            break
        enqueue_deliveries(client, new_ids)
        after_id = rows[-1].event_id
        events += len(rows)
        created += len(new_ids)
        progress.update(events, created)
    progress.finish(events, created)
    return BackfillResult(since, events, created)


def _batch(
    sessions: sessionmaker[Session],
    publisher_id: int,
    postback_id: int,
    since: datetime,
    after_id: int,
    size: int,
) -> tuple[list[Any], list[int]]:
    """One batch in its own transaction, redone when a concurrent writer got in the way.

    Another run (a double click, the outbox firing a status change) may insert the same (postback, event)
    between our check and our insert: the unique constraint refuses it and the redo skips what the other made.
    On SQLite a transaction that read before a concurrent writer committed cannot write ("database is
    locked"); the redo starts afresh.
    """
    for attempt in range(1, BATCH_TRIES + 1):
        try:
            return _one_batch(sessions, publisher_id, postback_id, since, after_id, size)
        except (IntegrityError, OperationalError):
            if attempt == BATCH_TRIES:
                raise
            sleep(0.05 * attempt)
    raise AssertionError("unreachable: the last try returns or raises")


def _one_batch(
    sessions: sessionmaker[Session],
    publisher_id: int,
    postback_id: int,
    since: datetime,
    after_id: int,
    size: int,
) -> tuple[list[Any], list[int]]:
    with sessions() as session, session.begin():
        query = _events(publisher_id, since).where(TransactionEvent.id > after_id).limit(size)
        rows = list(session.execute(query))
        fired = [_fired(row) for row in rows]
        made = create_deliveries(session, fired, postback_ids=[postback_id], skip_existing=True)
    return rows, [delivery_id for ids in made.values() for delivery_id in ids]


def _check_postback(session: Session, publisher_id: int, postback_id: int) -> None:
    postback = session.get(Postback, postback_id)
    if postback is None or postback.publisher_id != publisher_id or postback.deleted_at is not None:
        raise FieldError("postback_id", postback_id, "is not one of your postbacks")
    if not postback.active:
        raise FieldError("postback_id", postback_id, "is paused; resume it before sending past transactions")


def _events(publisher_id: int, since: datetime) -> Select[*tuple[Any, ...]]:
    """The publisher's transaction events since `since`, oldest first (matching is left to the outbox)."""
    return (
        select(
            TransactionEvent.id.label("event_id"),
            TransactionEvent.kind,
            TransactionEvent.status,
            Transaction.id.label("transaction_id"),
            Transaction.publisher_id,
            Transaction.traffic_source_id,
            Transaction.program_id,
            Transaction.event_type,
        )
        .join(Transaction, Transaction.id == TransactionEvent.transaction_id)
        .where(Transaction.publisher_id == publisher_id, TransactionEvent.occurred_at >= since)
        .order_by(TransactionEvent.id)
    )


def _fired(row: Any) -> FiredEvent:
    return FiredEvent(
        event_id=row.event_id,
        transaction_id=row.transaction_id,
        publisher_id=row.publisher_id,
        traffic_source_id=row.traffic_source_id,
        program_id=row.program_id,
        trigger=trigger_of(row.kind, row.event_type),
        status=row.status,
    )


class _Progress:
    """Progress in Redis, for the page's progress bar; losing it (Redis down) loses only the bar."""

    def __init__(self, client: redis.Redis, postback_id: int, since: datetime, total: int | None) -> None:
        self.client = client
        self.key = progress_key(postback_id)
        self.base = {"since": since.isoformat(), "total": total or 0, "started_at": utcnow().isoformat()}
        # No total yet: the job, not the request, counts the history.
        self._write({"state": "running" if total is not None else "queued", "done": 0, "created": 0})

    def update(self, done: int, created: int) -> None:
        self._write({"state": "running", "done": done, "created": created})

    def finish(self, done: int, created: int) -> None:
        self._write({"state": "done", "done": done, "created": created, "finished_at": utcnow().isoformat()})

    def _write(self, fields: dict[str, Any]) -> None:
        try:
            self.client.set(self.key, json.dumps({**self.base, **fields}), ex=PROGRESS_TTL_S)
        except redis.RedisError as exc:
            log.warning("backfill progress not recorded, Redis unavailable: %s", exc)


def progress_key(postback_id: int) -> str:
    return f"portal:backfill:{postback_id}"


def status(client: redis.Redis, postback_id: int) -> dict[str, Any] | None:
    """The last backfill of a postback: state, since, total, done, created; None if there was none."""
    try:
        raw = client.get(progress_key(postback_id))
    except redis.RedisError:
        return None
    if not raw:
        return None
    found: dict[str, Any] = json.loads(raw)
    return found
