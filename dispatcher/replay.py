"""Replay: re-open failed (or finished) deliveries so they are sent again, keeping their attempt history.

Re-opened deliveries are pending, due now and marked as not queued, so the pump hands them to a worker within
a second; callers may also enqueue them at once after commit (`queueing.enqueue_deliveries(..., retry=True)`).
A replayed delivery starts the retry schedule afresh. Bulk replays run as a job (`enqueue_bulk_replay`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import cast

import redis
from rq import Queue
from sqlalchemy import Select, Table, select, update
from sqlalchemy.orm import Session

from dispatcher.host_filter import host_matches
from dispatcher.models import Delivery, DeliveryState
from dispatcher.queueing import RETRY_QUEUE
from dispatcher.transaction_filters import SaleValues, transaction_ids

REPLAY_JOB = "workers.jobs.replay_failed"
REPLAY_CHUNK = 1000
deliveries = cast(Table, Delivery.__table__)


class ReplayError(ValueError):
    """The delivery cannot be replayed (unknown, or still pending); the message says which and why."""


@dataclass(frozen=True)
class ReplayFilter:
    """Failed deliveries completed since `since`, optionally narrowed; empty fields match everything.

    The narrowing fields are the support search's, so "replay all of these" re-sends what the search showed;
    `created_from`/`created_to` bound when the delivery was made (the search's dates), `since` its failure.
    """

    since: datetime
    publisher_id: int | None = None
    postback_id: int | None = None
    error_class: str | None = None
    status_code: int | None = None
    destination_host: str | None = None
    sales_id: str | None = None
    order_number: str | None = None
    program_id: int | None = None
    advertiser_id: int | None = None
    click_id: str | None = None
    sub_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None  # exclusive

    def to_job_args(self) -> dict[str, object]:
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in asdict(self).items()
        }

    @classmethod
    def from_job_args(cls, args: Mapping[str, object]) -> ReplayFilter:
        fields: dict[str, object] = dict(args)
        for name in ("since", "created_from", "created_to"):
            if fields.get(name) is not None:
                fields[name] = datetime.fromisoformat(str(fields[name]))
        return cls(**fields)  # type: ignore[arg-type]


def reopen_delivery(session: Session, delivery_id: int, *, now: datetime | None = None) -> Delivery:
    """Re-open one delivery that succeeded or failed; its attempts are kept and numbering continues."""
    delivery = session.get(Delivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise ReplayError(f"delivery {delivery_id} does not exist")
    if delivery.state == DeliveryState.PENDING.value:
        raise ReplayError(f"delivery {delivery_id} is still pending: it will be sent without a replay")
    _reopen(delivery, now or datetime.now(UTC))
    return delivery


def matching_failed(criteria: ReplayFilter) -> Select[int]:
    """The ids a bulk replay re-opens (also what a support view would count before confirming)."""
    query = select(Delivery.id).where(
        Delivery.state == DeliveryState.FAILED.value, Delivery.completed_at >= criteria.since
    )
    for column, value in (
        (Delivery.publisher_id, criteria.publisher_id),
        (Delivery.postback_id, criteria.postback_id),
        (Delivery.last_error_class, criteria.error_class),
        (Delivery.last_status_code, criteria.status_code),
    ):
        if value is not None:
            query = query.where(column == value)
    if criteria.destination_host is not None:
        query = query.where(host_matches(criteria.destination_host))
    if criteria.created_from is not None:
        query = query.where(Delivery.created_at >= criteria.created_from)
    if criteria.created_to is not None:
        query = query.where(Delivery.created_at < criteria.created_to)
    sales = transaction_ids(SaleValues.of(criteria))
    if sales is not None:
        query = query.where(Delivery.transaction_id.in_(sales))
    return query.order_by(Delivery.id)


def reopen_matching(
    session: Session, criteria: ReplayFilter, *, after_id: int = 0, limit: int = REPLAY_CHUNK
) -> list[int]:
    """Re-open up to `limit` matching deliveries with ids above `after_id`, in id order.

    Call again (new transaction) with the last id returned until it returns []: the cursor keeps a delivery
    that fails again meanwhile from being re-opened twice by one replay.
    """
    query = matching_failed(criteria).where(Delivery.id > after_id).limit(limit)
    ids = list(session.scalars(query))
    if ids:
        now = datetime.now(UTC)
        session.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(ids), deliveries.c.state == DeliveryState.FAILED.value)
            .values(
                state=DeliveryState.PENDING.value,
                next_attempt_at=now,
                queued_at=None,
                completed_at=None,
                lease_expires_at=None,
                leased_by=None,
                replayed_after_attempts=deliveries.c.attempt_count,
            )
        )
    return ids


def enqueue_bulk_replay(connection: redis.Redis, criteria: ReplayFilter) -> str:
    """Hand a bulk replay to the workers; returns the job id (the same filter twice is one job)."""
    args = criteria.to_job_args()
    digest = hashlib.sha1(json.dumps(args, sort_keys=True).encode()).hexdigest()[:20]
    queue = Queue(RETRY_QUEUE, connection=connection)
    job = queue.enqueue(
        REPLAY_JOB, args=(args,), job_id=f"replay-{digest}", job_timeout=3600, result_ttl=3600
    )
    return str(job.id)


def _reopen(delivery: Delivery, now: datetime) -> None:
    delivery.state = DeliveryState.PENDING.value
    delivery.next_attempt_at = now
    delivery.queued_at = None
    delivery.completed_at = None
    delivery.lease_expires_at = None
    delivery.leased_by = None
    delivery.replayed_after_attempts = delivery.attempt_count
