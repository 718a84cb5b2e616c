"""Prometheus metrics: what this host's processes counted, and the state of the queue at scrape time.

Counters and histograms (sales, deliveries, attempts, durations, delays) are counted where the work happens
(`dispatcher.instruments`); a scrape reads this host's share: every process writing to its
PROMETHEUS_MULTIPROC_DIR, or without one this process. Prometheus adds the hosts up. The gauges (pending
deliveries, the oldest one's age, paused postbacks, queue depths, workers, pumps) describe the whole cluster,
read from the database and Redis at each scrape: every host answers the same, so aggregate them with max().
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispatcher import instruments
from dispatcher.models import Postback
from dispatcher.support.dashboard import pending_state, queue_state


class DispatcherCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session], client: redis.Redis) -> None:
        self.sessions = sessions
        self.client = client

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        with self.sessions() as session:
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
    found.register(instruments.host_collector())
    found.register(DispatcherCollector(sessions, client))
    return found


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


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
    yield _gauge("postback_workers", "RQ workers alive (heartbeat not expired).", state.workers or 0)
    yield _gauge("postback_pumps", "Pumps alive (heartbeat not expired).", state.pumps or 0)
