"""Bulk status changes from the advertiser portal: "approve (decline, reverse) all N matching this filter".

The page counts what the filter matches and asks to confirm that count; starting checks the count again (a
different number is said, as bulk replay does) and writes an audit entry, the record of the run: who asked,
the filter, the confirmed count, and the newest transaction id then, so a sale recorded later is never swept
in. The entry's id names the RQ job (`adv-bulk-<entry id>`): handing it over twice is one job. The job
(`workers.jobs.change_status_matching` -> `run`) applies the ledger's own `change_status` to each matching
transaction, oldest first, so every status postback fires exactly as through the API; a transaction that
cannot take the change (a declined one asked to be approved) is counted as skipped, not an error. Progress
is kept in the job's meta while it runs, and the final counts in the audit entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.advertiser import transactions
from dispatcher.ledger import StatusChange, StatusConflict, change_status
from dispatcher.ledger.status import TARGETS
from dispatcher.models import AuditEntry, Channel
from dispatcher.queueing import RETRY_QUEUE, enqueue_deliveries
from dispatcher.validation import FieldError

ACTION = "advertiser_bulk_status"
TARGET_TYPE = "advertiser"
JOB = "workers.jobs.change_status_matching"
JOB_TIMEOUT_S = 3600
RESULT_TTL_S = 7 * 24 * 3600
CHUNK = 200
FILTER_FIELDS = tuple(name for name in transactions.PARAMETERS if name != "before")


class CountChanged(ValueError):
    """The number of matching transactions changed since it was confirmed; confirm the new one."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} transactions match now")
        self.count = count


@dataclass(frozen=True)
class Request:
    """A checked bulk request: the change and the filter, as the list page's query parameters."""

    target: str
    args: dict[str, str]
    filters: transactions.Filters


@dataclass(frozen=True)
class Progress:
    status: str  # queued | started | finished | failed | gone (RQ forgot the job) | unknown
    total: int
    done: int
    changed: int
    skipped: int

    @property
    def percent(self) -> int:
        if self.status == "finished" or self.total == 0:
            return 100
        return min(100, round(100 * self.done / self.total))

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "total": self.total,
            "done": self.done,
            "changed": self.changed,
            "skipped": self.skipped,
            "percent": self.percent,
        }


def parse(values: Mapping[str, str]) -> Request:
    """The change (`action`: approved, declined or reversed) and the list's filters (a bad one names it)."""
    target = (values.get("action") or "").strip()
    if target not in TARGETS:
        raise FieldError("action", target, f"must be one of {', '.join(TARGETS)}")
    args = {name: values[name].strip() for name in FILTER_FIELDS if (values.get(name) or "").strip()}
    return Request(target, args, transactions.parse_filters(args))


def count(session: Session, advertiser_id: int, request: Request) -> int:
    return transactions.count(session, advertiser_id, request.filters)


def start(
    session: Session,
    client: redis.Redis,
    advertiser_id: int,
    user_id: int,
    request: Request,
    confirmed: int,
) -> AuditEntry:
    """Queue the change if `confirmed` is still the number that matches; the entry is committed with it."""
    if confirmed <= 0:
        raise FieldError("confirmed_count", confirmed, "must be the (positive) count the confirmation showed")
    newest = transactions.newest_id(session)
    matching = transactions.count(session, advertiser_id, request.filters, up_to_id=newest)
    if matching != confirmed:
        raise CountChanged(matching)
    entry = AuditEntry(
        staff_user_id=None,
        action=ACTION,
        target_type=TARGET_TYPE,
        target_id=str(advertiser_id),
        detail={
            "via": "advertiser portal",
            "advertiser_user_id": user_id,
            "status": request.target,
            "filter": request.args,
            "total": matching,
            "up_to_id": newest,
            "started_at": datetime.now(UTC).isoformat(),
        },
    )
    session.add(entry)
    session.flush()
    # Enqueued before the commit: if Redis refuses, nothing is recorded as started.
    Queue(RETRY_QUEUE, connection=client).enqueue(
        JOB, args=(entry.id,), job_id=job_id(entry.id), job_timeout=JOB_TIMEOUT_S, result_ttl=RESULT_TTL_S
    )
    session.commit()
    return entry


def job_id(entry_id: int) -> str:
    return f"adv-bulk-{entry_id}"


def get_entry(session: Session, advertiser_id: int, entry_id: int) -> AuditEntry | None:
    """The advertiser's own bulk change; anyone else's (or any other audit entry) is None."""
    entry = session.get(AuditEntry, entry_id)
    if entry is None or entry.action != ACTION or entry.target_id != str(advertiser_id):
        return None
    return entry


def run(sessions: sessionmaker[Session], client: redis.Redis | None, entry_id: int) -> dict[str, int]:
    """The job's work: each matching transaction changed through the ledger (which commits each one), its
    new deliveries handed to RQ after each chunk, progress in the job's meta, the counts in the entry at
    the end."""
    with sessions() as session:
        entry = session.get(AuditEntry, entry_id)
        if entry is None or entry.action != ACTION:
            raise ValueError(f"audit entry {entry_id} is not an advertiser's bulk status change")
        detail = dict(entry.detail)
    advertiser_id, target = int(entry.target_id), str(detail["status"])
    filters = transactions.parse_filters(detail["filter"])
    counts = {"done": 0, "changed": 0, "skipped": 0}
    last_id = 0
    with sessions() as session:
        while chunk := transactions.matching_after(
            session, advertiser_id, filters, last_id, int(detail["up_to_id"]), CHUNK
        ):
            session.commit()  # end the read: each change below is its own transaction
            new_ids: list[int] = []
            for _, sales_id in chunk:
                new_ids += _change(session, advertiser_id, sales_id, target, counts)
            last_id = chunk[-1][0]
            if client is not None:
                enqueue_deliveries(client, new_ids, new=True)
            _report(counts)
        entry = session.get(AuditEntry, entry_id)
        assert entry is not None
        entry.detail = {**entry.detail, "result": counts}  # a new dict: the JSON column sees the change
        session.commit()
    return counts


def _change(
    session: Session, advertiser_id: int, sales_id: str, target: str, counts: dict[str, int]
) -> list[int]:
    counts["done"] += 1
    try:
        changed = change_status(
            session, advertiser_id, sales_id, StatusChange(status=target), Channel.API.value
        )
    except StatusConflict:
        session.rollback()
        counts["skipped"] += 1
        return []
    counts["changed"] += 1
    return list(changed.new_delivery_ids)


def _report(counts: dict[str, int]) -> None:
    job = get_current_job()
    if job is not None:
        job.meta.update(counts)
        job.save_meta()  # type: ignore[no-untyped-call]


def progress(client: redis.Redis, entry: AuditEntry) -> Progress:
    total = int(entry.detail.get("total", 0))
    result = entry.detail.get("result")
    status, counts = _job_state(client, job_id(entry.id))
    if isinstance(result, dict):  # the record, once the job has finished
        status, counts = "finished", result
    return Progress(
        status,
        total,
        int(counts.get("done", 0)),
        int(counts.get("changed", 0)),
        int(counts.get("skipped", 0)),
    )


def _job_state(client: redis.Redis, name: str) -> tuple[str, Mapping[str, Any]]:
    try:
        job = Job.fetch(name, connection=client)
    except NoSuchJobError:
        return "gone", {}
    except redis.RedisError:
        return "unknown", {}
    found = job.get_status(refresh=False)
    return str(getattr(found, "value", found) or "unknown"), job.meta
