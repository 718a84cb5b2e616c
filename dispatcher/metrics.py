"""Prometheus metrics, computed from the database and RQ at scrape time.

Web, worker and pump processes come and go (gunicorn workers, `worker --processes N`), so nothing is counted
in process memory: each scrape asks the database and Redis, and every web process answers the same. Counters
come from the id sequences (a row's id is never reused, so `max(id)` only grows; rolled-back inserts leave
gaps that count), windows from indexed time columns. The attempt latency is a gauge histogram of the last
hour's attempts: a window, not a running counter, which is what the type is for.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.models import (
    Attempt,
    AttemptOutcome,
    Click,
    Delivery,
    DeliveryState,
    Postback,
    Transaction,
    TransactionEvent,
)
from dispatcher.support.dashboard import pending_state, queue_state

WINDOW = timedelta(hours=1)
LATENCY_BUCKETS_MS = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 15000)
FINISHED = (AttemptOutcome.SUCCEEDED.value, AttemptOutcome.RETRY.value, AttemptOutcome.FAILED.value)


class DispatcherCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session], client: redis.Redis) -> None:
        self.sessions = sessions
        self.client = client

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        with self.sessions() as session:
            yield from _totals(session)
            yield _completed(session, now)
            yield _latency(session, now)
            oldest, pending = pending_state(session, now)
            yield _gauge("postback_deliveries_pending", "Deliveries waiting to be sent or retried.", pending)
            yield _gauge(
                "postback_oldest_pending_age_seconds",
                "Age of the oldest pending delivery (0 when none).",
                oldest or 0.0,
            )
            paused = session.scalar(
                select(func.count()).where(Postback.active.is_(False), Postback.deleted_at.is_(None))
            )
            yield _gauge("postback_postbacks_paused", "Postbacks paused (not deleted).", int(paused or 0))
        yield from _queues(self.client)


def registry(sessions: sessionmaker[Session], client: redis.Redis) -> CollectorRegistry:
    """A registry of our own (not the process-global default, whose process metrics describe one worker)."""
    found = CollectorRegistry(auto_describe=False)
    found.register(DispatcherCollector(sessions, client))
    return found


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _totals(session: Session) -> Iterator[Metric]:
    for name, documentation, column in (
        ("postback_clicks_recorded", "Clicks recorded (from the id sequence).", Click.id),
        ("postback_transactions_recorded", "Transactions recorded (from the id sequence).", Transaction.id),
        (
            "postback_transaction_events_recorded",
            "Transaction events recorded: sales, leads and status changes (from the id sequence).",
            TransactionEvent.id,
        ),
        ("postback_deliveries_created", "Deliveries created (from the id sequence).", Delivery.id),
        ("postback_attempts", "Delivery attempts made (from the id sequence).", Attempt.id),
    ):
        total = session.scalar(select(func.max(column))) or 0
        yield CounterMetricFamily(name, documentation, value=int(total))


def _completed(session: Session, now: datetime) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "postback_deliveries_completed_last_hour",
        "Deliveries that reached an outcome in the last hour, by outcome.",
        labels=["outcome"],
    )
    query = (
        select(Delivery.state, func.count())
        .where(
            Delivery.state.in_((DeliveryState.SUCCEEDED.value, DeliveryState.FAILED.value)),
            Delivery.completed_at >= now - WINDOW,
        )
        .group_by(Delivery.state)
    )
    # A Result has .keys(), so dict() would take it for a mapping: build the dict from the rows.
    rows = {state: int(n) for state, n in session.execute(query).tuples()}
    for outcome in (DeliveryState.SUCCEEDED.value, DeliveryState.FAILED.value):
        family.add_metric([outcome], int(rows.get(outcome, 0)))
    return family


def _latency(session: Session, now: datetime) -> GaugeHistogramMetricFamily:
    counts = [func.sum(case((Attempt.duration_ms <= limit, 1), else_=0)) for limit in LATENCY_BUCKETS_MS]
    row = session.execute(
        select(func.count(), func.sum(Attempt.duration_ms), *counts).where(
            Attempt.started_at >= now - WINDOW,
            Attempt.outcome.in_(FINISHED),
            Attempt.duration_ms.is_not(None),
        )
    ).one()
    total, total_ms = int(row[0] or 0), float(row[1] or 0)
    buckets = [(str(limit / 1000), float(row[2 + i] or 0)) for i, limit in enumerate(LATENCY_BUCKETS_MS)]
    buckets.append(("+Inf", float(total)))
    return GaugeHistogramMetricFamily(
        "postback_attempt_duration_seconds",
        "Duration of the attempts finished in the last hour.",
        buckets=buckets,
        gsum_value=total_ms / 1000,
    )


def _queues(client: redis.Redis) -> Iterator[Metric]:
    state = queue_state(client)
    up = _gauge(
        "postback_redis_up", "1 when RQ's Redis answered this scrape.", 0 if state.depths is None else 1
    )
    yield up
    if state.depths is None:
        return
    depth = GaugeMetricFamily("postback_queue_depth", "Jobs waiting in each RQ queue.", labels=["queue"])
    for name, jobs in state.depths.items():
        depth.add_metric([name], jobs)
    yield depth
    yield _gauge("postback_workers", "RQ workers registered.", state.workers or 0)
