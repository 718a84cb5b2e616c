"""Counters and histograms, counted in the process where the work happens (prometheus_client).

Sales are counted by the web process that records them, attempts and deliveries by the worker process that
settles them (`workers.metrics`). With `PROMETHEUS_MULTIPROC_DIR` set in a process's environment when it
starts (prometheus_client reads it once, at import), each process writes its values to files in that
directory and `host_collector()` sums every process of the host that writes there: gunicorn's workers,
`flask worker --processes N`'s children, and the values of processes that have exited (so counters never go
down). Unset, the values live in this process only (development runs, tests).

Every metric has labels, and prometheus_client writes a labelled metric's file on its first use, not at
import: the owner of the directory (gunicorn's master, a worker serving `--metrics-port`) can empty it at
start although this module is already imported.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

# This process's own values (single-process mode); in multiprocess mode the files are read instead.
REGISTRY = CollectorRegistry(auto_describe=True)

# Receivers answer in tens of milliseconds to the total timeout (15 s by default).
DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)
# From a handoff in milliseconds to a worker backlog of minutes; a backfill of old sales lands in +Inf.
DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

SALES = Counter(
    "postback_sales_recorded",
    "New transactions recorded (a duplicate report is not counted), by how they were reported.",
    ["channel"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "postback_deliveries_finished",
    "Deliveries that reached an end: succeeded, failed (for good), stopped (postback paused or deleted).",
    ["outcome"],
    registry=REGISTRY,
)
ATTEMPTS = Counter(
    "postback_attempts",
    "Attempts finished, by outcome (succeeded, retry, failed) and error class (none when it succeeded).",
    ["outcome", "error_class"],
    registry=REGISTRY,
)
DURATION = Histogram(
    "postback_attempt_duration_seconds",
    "Time from sending an attempt's request to its answer or error, by outcome (unsendable templates aside).",
    ["outcome"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
DELAY = Histogram(
    "postback_sale_to_send_delay_seconds",
    "From the recording of a sale (or status change) to the start of its delivery's first attempt, by event.",
    ["event"],
    buckets=DELAY_BUCKETS,
    registry=REGISTRY,
)


class _Failures:
    logged = False


@contextlib.contextmanager
def never_failing() -> Iterator[None]:
    """Metrics are extra: a failure to count (the multiprocess directory removed, a full disk) is logged once
    per process and never turns a recorded sale into a 500 or stops a worker's writing of outcomes."""
    try:
        yield
    except Exception:  # noqa: BLE001 - see the docstring
        if not _Failures.logged:
            _Failures.logged = True
            log.exception(
                "could not record metrics (%s=%r); counting goes on without them",
                MULTIPROC_DIR,
                os.environ.get(MULTIPROC_DIR),
            )


def sales_recorded(channel: str, count: int) -> None:
    if count:
        with never_failing():
            SALES.labels(channel).inc(count)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_DIR) or None


def host_collector(path: str | None = None) -> Collector:
    """What this host's processes counted: the files under `path` (default: `PROMETHEUS_MULTIPROC_DIR`),
    or without one this process's registry."""
    path = path or multiprocess_dir()
    if path is None:
        return REGISTRY
    # prometheus_client.multiprocess carries no annotations (the rest of the package does).
    return MultiProcessCollector(None, path=path)  # type: ignore[no-untyped-call]


def empty_directory(path: str) -> None:
    """Called once by the directory's owner before its processes start: the files of an earlier run would
    otherwise be added to this run's (their process ids are gone but their values stay)."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)


def process_exited(pid: int, path: str | None = None) -> None:
    """prometheus_client's clean-up for a process that ended (its live gauges); counters keep their values."""
    path = path or multiprocess_dir()
    if path is not None:
        mark_process_dead(pid, path=path)  # type: ignore[no-untyped-call]
