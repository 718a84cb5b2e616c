"""Bulk replay from the console: count what a filter re-opens, confirm that count, run the engine's job
(`dispatcher.replay.enqueue_bulk_replay`), and follow its progress.

The filter is the engine's `ReplayFilter`: failed deliveries completed since a time, narrowed by any of the
search's filters (so "replay these" re-sends what the search showed). The audit entry written when the job
starts is the record of the replay: its detail holds the filter, the confirmed count and the start time, and
progress is read back from the database (how many of those failures still wait to be re-opened) and RQ.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatcher.host_filter import searched_host
from dispatcher.models import AuditEntry, Delivery
from dispatcher.replay import ReplayFilter, enqueue_bulk_replay, matching_failed
from dispatcher.support import audit
from dispatcher.support.params import moment, row_id, status_code, text
from dispatcher.support.search import ERROR_CLASSES
from dispatcher.validation import FieldError

ACTION = "bulk_replay"
TARGET = "replay_job"


class CountChanged(ValueError):
    """The number of matching deliveries changed since it was confirmed; confirm the new one."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} deliveries match now")
        self.count = count


@dataclass(frozen=True)
class Progress:
    status: str  # queued | started | finished | failed | gone (RQ forgot the job) | unknown
    total: int
    done: int
    reopened: int | None  # the job's own count, once finished

    @property
    def percent(self) -> int:
        if self.status == "finished" or self.total == 0:
            return 100 if self.status in ("finished", "gone") or self.total == 0 else 0
        return min(100, round(100 * self.done / self.total))

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "total": self.total,
            "done": self.done,
            "reopened": self.reopened,
            "percent": self.percent,
        }


def check_narrowable(args: Any) -> None:
    """A bulk replay re-sends failures: a search for another state cannot become one."""
    state = text(args, "state")
    if state not in (None, "failed"):
        raise FieldError("state", state, "bulk replay re-sends failed deliveries only")


def parse_filter(args: Any) -> ReplayFilter:
    check_narrowable(args)
    since = moment(args, "since", end=False)
    if since is None:
        raise FieldError("since", "", "is required: replay failures completed since when?")
    error_class = text(args, "error_class")
    if error_class is not None and error_class not in ERROR_CLASSES:
        raise FieldError("error_class", error_class, f"must be one of {', '.join(ERROR_CLASSES)}")
    host = text(args, "destination_host")
    return ReplayFilter(
        since=since,
        publisher_id=row_id(args, "publisher_id"),
        postback_id=row_id(args, "postback_id"),
        error_class=error_class,
        status_code=status_code(text(args, "status_code")),
        destination_host=searched_host(host) if host else None,
        sales_id=text(args, "sales_id"),
        order_number=text(args, "order_number"),
        program_id=row_id(args, "program_id"),
        advertiser_id=row_id(args, "advertiser_id"),
        click_id=text(args, "click_id"),
        sub_id=text(args, "sub_id"),
        created_from=moment(args, "from", end=False),
        created_to=moment(args, "to", end=True),
    )


def count(session: Session, criteria: ReplayFilter) -> int:
    return int(session.scalar(select(func.count()).select_from(matching_failed(criteria).subquery())) or 0)


def start(
    session: Session, client: redis.Redis, staff_id: int, criteria: ReplayFilter, confirmed: int
) -> AuditEntry:
    """Start the job if `confirmed` is still the number that matches; the entry is committed with it."""
    now = datetime.now(UTC)
    matching = count(session, criteria)
    if matching != confirmed:
        raise CountChanged(matching)
    entry = audit.record(
        session,
        staff_id,
        ACTION,
        TARGET,
        "pending",
        filter=criteria.to_job_args(),
        total=matching,
        started_at=now.isoformat(),
    )
    # Enqueued before the commit: if Redis refuses, nothing is recorded as started.
    entry.target_id = enqueue_bulk_replay(client, criteria)
    session.commit()
    return entry


def get_entry(session: Session, entry_id: int) -> AuditEntry | None:
    entry = session.get(AuditEntry, entry_id)
    return entry if entry is not None and entry.action == ACTION else None


def criteria_of(entry: AuditEntry) -> ReplayFilter:
    return ReplayFilter.from_job_args(entry.detail["filter"])


def progress(session: Session, client: redis.Redis, entry: AuditEntry) -> Progress:
    criteria = criteria_of(entry)
    started = datetime.fromisoformat(entry.detail["started_at"])
    # Still failed and completed before the start: not re-opened yet. Re-opened ones have no completion
    # time, or a later one if they failed again.
    waiting = matching_failed(criteria).where(Delivery.completed_at <= started)
    remaining = int(session.scalar(select(func.count()).select_from(waiting.subquery())) or 0)
    total = int(entry.detail.get("total", 0))
    status, reopened = _job_state(client, entry.target_id)
    return Progress(status, total, max(0, total - remaining), reopened)


def _job_state(client: redis.Redis, job_id: str) -> tuple[str, int | None]:
    try:
        job = Job.fetch(job_id, connection=client)
    except NoSuchJobError:
        return "gone", None
    except redis.RedisError:
        return "unknown", None
    found = job.get_status(refresh=False)
    status = str(getattr(found, "value", found) or "unknown")  # RQ's JobStatus enum, or None
    result = job.return_value() if status == "finished" else None
    reopened = int(result["reopened"]) if isinstance(result, dict) and "reopened" in result else None
    return status, reopened
