"""What the delivery engine counts (`dispatcher.instruments`), and a worker host's own metrics port.

Recorded after the outcomes are committed, from what the engine already holds: counter increments and
histogram observations in memory (or in prometheus_client's memory-mapped files), no query.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from datetime import timedelta

from prometheus_client import CollectorRegistry, start_http_server

from dispatcher import instruments
from dispatcher.models import AttemptOutcome, DeliveryState, ErrorClass
from workers.attempts import Outcome

log = logging.getLogger(__name__)

STOPPED = "stopped"
NO_ERROR = "none"


def settled(outcomes: Sequence[Outcome]) -> None:
    with instruments.never_failing():
        _count_settled(outcomes)


def _count_settled(outcomes: Sequence[Outcome]) -> None:
    for outcome in outcomes:
        result = outcome.decision.outcome
        error_class = outcome.error.error_class if outcome.error else None
        instruments.ATTEMPTS.labels(result.value, error_class or NO_ERROR).inc()
        if result is AttemptOutcome.SUCCEEDED:
            instruments.DELIVERIES.labels(DeliveryState.SUCCEEDED.value).inc()
        elif result is AttemptOutcome.FAILED:
            instruments.DELIVERIES.labels(DeliveryState.FAILED.value).inc()
        if error_class is ErrorClass.TEMPLATE:
            continue  # nothing went on the wire: neither a duration nor a send
        duration_s = outcome.exchange.duration_ms / 1000
        instruments.DURATION.labels(result.value).observe(duration_s)
        recorded_at = outcome.claimed.recorded_at
        if outcome.claimed.number == 1 and recorded_at is not None:
            # The request left when it ended less its duration (it may have waited in its host's line).
            started = outcome.finished_at - timedelta(seconds=duration_s)
            delay_s = max(0.0, (started - recorded_at).total_seconds())
            instruments.DELAY.labels(str(outcome.claimed.values.get("event", ""))).observe(delay_s)


def stopped(count: int) -> None:
    """Deliveries of a paused or deleted postback, ended without an attempt."""
    if count:
        with instruments.never_failing():
            instruments.DELIVERIES.labels(STOPPED).inc(count)


def serve(port: int, *, path: str | None = None, address: str = "0.0.0.0") -> None:
    """This host's worker metrics on http://<address>:<port>/metrics, from a daemon thread: the values under
    `path` (or PROMETHEUS_MULTIPROC_DIR), or without a directory this process's own."""
    registry = CollectorRegistry()
    registry.register(instruments.host_collector(path))
    start_http_server(port, addr=address, registry=registry)
    log.info("worker metrics served on port %d", port)


def serve_host(port: int, *, children: bool) -> str | None:
    """Serve this host's worker metrics; returns the directory its worker processes must write to.

    The worker serving the port owns the directory (PROMETHEUS_MULTIPROC_DIR, or for a pool of `children`
    without one a temporary directory) and empties it first. A single worker without a directory serves its
    own registry."""
    path = instruments.multiprocess_dir()
    if path is None and children:
        path = tempfile.mkdtemp(prefix="dispatcher-worker-metrics-")
    if path is not None:
        instruments.empty_directory(path)
    serve(port, path=path)
    return path
