"""The dashboard's figures: 24 h of attempts in 15-minute buckets, trouble spots, queues, workers and pumps,
paused postbacks.

Everything is read from the database and RQ when asked, so any number of web processes show the same
numbers. The 24 h window reads attempts through their `started_at` index and failed deliveries through
`(state, completed_at)`; percentiles are PostgreSQL's `percentile_cont`, or computed here on SQLite
(a development database is small).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from rq import Queue
from sqlalchemy import Integer, and_, case, cast, func, literal_column, or_, select
from sqlalchemy.orm import Session

from dispatcher import heartbeats
from dispatcher.heartbeats import Liveness
from dispatcher.models import Attempt, AttemptOutcome, Delivery, DeliveryState, Postback, Publisher
from dispatcher.queueing import LANES

BUCKET_S = 15 * 60
WINDOW = timedelta(hours=24)
TOP = 10
FINISHED = (AttemptOutcome.SUCCEEDED.value, AttemptOutcome.RETRY.value, AttemptOutcome.FAILED.value)


@dataclass(frozen=True)
class Bucket:
    start: datetime
    attempts: int
    succeeded: int
    p50_ms: float | None
    p95_ms: float | None

    @property
    def per_minute(self) -> float:
        return self.attempts / (BUCKET_S / 60)

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.attempts if self.attempts else None


@dataclass(frozen=True)
class QueueState:
    depths: dict[str, int] | None  # None: Redis unreachable
    alive: Liveness | None

    @property
    def workers(self) -> int | None:
        return None if self.alive is None else len(self.alive.workers)

    @property
    def pumps(self) -> int | None:
        return None if self.alive is None else len(self.alive.pumps)


@dataclass(frozen=True)
class Dashboard:
    buckets: list[Bucket]
    failing_hosts: list[HostTrouble]
    failing_publishers: list[tuple[int, str, int]]
    queues: QueueState
    oldest_pending_s: float | None
    pending: int
    paused: list[tuple[Postback, str]]
    checked_at: datetime  # what the ages of heartbeats are counted from

    @property
    def totals(self) -> tuple[int, int]:
        return sum(b.attempts for b in self.buckets), sum(b.succeeded for b in self.buckets)


def build(session: Session, client: redis.Redis, now: datetime | None = None) -> Dashboard:
    now = now or datetime.now(UTC)
    oldest, pending = pending_state(session, now)
    return Dashboard(
        buckets=attempt_buckets(session, now),
        failing_hosts=failing_hosts(session, now),
        failing_publishers=failing_publishers(session, now),
        queues=queue_state(client),
        oldest_pending_s=oldest,
        pending=pending,
        paused=paused_postbacks(session),
        checked_at=now,
    )


def _bucket_of(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        epoch = func.extract("epoch", Attempt.started_at)
        return cast(func.floor(epoch / BUCKET_S), Integer)
    return cast(func.strftime("%s", Attempt.started_at), Integer) // BUCKET_S


def attempt_buckets(session: Session, now: datetime) -> list[Bucket]:
    """Every bucket of the window, empty ones included, oldest first."""
    first = int((now - WINDOW).timestamp()) // BUCKET_S + 1
    last = int(now.timestamp()) // BUCKET_S
    since = datetime.fromtimestamp(first * BUCKET_S, UTC)
    bucket = _bucket_of(session).label("bucket")
    finished = (Attempt.started_at >= since, Attempt.outcome.in_(FINISHED))
    ok = func.sum(case((Attempt.outcome == AttemptOutcome.SUCCEEDED.value, 1), else_=0))
    columns: list[Any] = [bucket, func.count(), ok]
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        for share in (0.5, 0.95):
            columns.append(func.percentile_cont(share).within_group(Attempt.duration_ms))
    rows = session.execute(select(*columns).where(*finished).group_by(literal_column("bucket"))).all()
    found: dict[int, tuple[int, int, float | None, float | None]] = {}
    for row in rows:
        p50 = float(row[3]) if postgres and row[3] is not None else None
        p95 = float(row[4]) if postgres and row[4] is not None else None
        found[int(row[0])] = (int(row[1]), int(row[2] or 0), p50, p95)
    if not postgres:
        found = _percentiles_here(session, since, found)
    return [
        Bucket(datetime.fromtimestamp(n * BUCKET_S, UTC), *found.get(n, (0, 0, None, None)))
        for n in range(first, last + 1)
    ]


def _percentiles_here(
    session: Session, since: datetime, found: dict[int, tuple[int, int, float | None, float | None]]
) -> dict[int, tuple[int, int, float | None, float | None]]:
    bucket = _bucket_of(session)
    durations: dict[int, list[int]] = {}
    query = select(bucket, Attempt.duration_ms).where(
        Attempt.started_at >= since, Attempt.outcome.in_(FINISHED), Attempt.duration_ms.is_not(None)
    )
    for number, duration in session.execute(query):
        durations.setdefault(int(number), []).append(int(duration))
    result = dict(found)
    for number, values in durations.items():
        attempts, succeeded, _, _ = found.get(number, (0, 0, None, None))
        result[number] = (attempts, succeeded, _quantile(values, 0.5), _quantile(values, 0.95))
    return result


def _quantile(values: list[int], share: float) -> float:
    if len(values) == 1:
        return float(values[0])
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return float(cuts[round(share * 100) - 1])


@dataclass(frozen=True)
class HostTrouble:
    host: str
    failed: int  # failed for good in the window
    retrying: int  # pending after at least one failed attempt: trouble now, not yet counted as failed


def failing_hosts(session: Session, now: datetime) -> list[HostTrouble]:
    """Hosts by failed and still-retrying deliveries: a receiver that has been down for an hour has only
    retrying ones (the retry schedule runs for a day before any fails for good)."""
    failed = Delivery.state == DeliveryState.FAILED.value
    retrying = and_(Delivery.state == DeliveryState.PENDING.value, Delivery.attempt_count > 0)
    failed_n = func.sum(case((failed, 1), else_=0))
    retrying_n = func.sum(case((retrying, 1), else_=0))
    query = (
        select(Delivery.destination_host, failed_n, retrying_n)
        .where(or_(and_(failed, Delivery.completed_at >= now - WINDOW), retrying))
        .group_by(Delivery.destination_host)
        .order_by((failed_n + retrying_n).desc())
        .limit(TOP)
    )
    return [HostTrouble(host or "(none)", int(f or 0), int(r or 0)) for host, f, r in session.execute(query)]


def failing_publishers(session: Session, now: datetime) -> list[tuple[int, str, int]]:
    counts = (
        select(Delivery.publisher_id, func.count().label("n"))
        .where(Delivery.state == DeliveryState.FAILED.value, Delivery.completed_at >= now - WINDOW)
        .group_by(Delivery.publisher_id)
        .order_by(func.count().desc())
        .limit(TOP)
        .subquery()
    )
    query = (
        select(counts.c.publisher_id, Publisher.name, counts.c.n)
        .join(Publisher, Publisher.id == counts.c.publisher_id)
        .order_by(counts.c.n.desc())
    )
    return [(int(pid), name, int(n)) for pid, name, n in session.execute(query)]


def queue_state(client: redis.Redis) -> QueueState:
    try:
        depths = {name: Queue(name, connection=client).count for name in LANES}
        return QueueState(depths, heartbeats.read(client))
    except redis.RedisError:
        return QueueState(None, None)


def pending_state(session: Session, now: datetime) -> tuple[float | None, int]:
    """Age of the oldest pending delivery (seconds) and how many are pending."""
    oldest, count = session.execute(
        select(func.min(Delivery.created_at), func.count()).where(
            Delivery.state == DeliveryState.PENDING.value
        )
    ).one()
    if oldest is None:
        return None, int(count)
    if oldest.tzinfo is None:  # SQLite's aggregate skips the column type
        oldest = datetime.fromisoformat(str(oldest)).replace(tzinfo=UTC)
    return max(0.0, (now - oldest).total_seconds()), int(count)


def paused_postbacks(session: Session, limit: int = 100) -> list[tuple[Postback, str]]:
    query = (
        select(Postback, Publisher.name)
        .join(Publisher, Publisher.id == Postback.publisher_id)
        .where(Postback.active.is_(False), Postback.deleted_at.is_(None))
        .order_by(Postback.paused_at.desc())
        .limit(limit)
    )
    return [(row.Postback, row.name) for row in session.execute(query)]
