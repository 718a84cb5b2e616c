"""Metrics counted by real worker processes: prometheus_client's multiprocess mode sums a pool of workers into
one exposition (read from the directory, or served on the worker's `--metrics-port`), parsed with
prometheus_client's own parser."""

from __future__ import annotations

import signal
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dispatcher import instruments
from dispatcher.db import Database
from dispatcher.queueing import enqueue_deliveries
from tests.workers.conftest import Receiver, Reply, make_delivery, run_command, start_command, worker_env

pytestmark = pytest.mark.processes

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _parsed(text: str) -> tuple[Samples, dict[str, str]]:
    """Every sample by (name, sorted labels), and every family's type; the parser refuses bad text."""
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, types


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _total(samples: Samples, name: str) -> float:
    return sum(value for (found, _), value in samples.items() if found == name)


def _directory_exposition(path: Path) -> str:
    registry = CollectorRegistry()
    registry.register(instruments.host_collector(str(path)))
    return generate_latest(registry).decode()


@pytest.fixture
def queue(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    yield client
    client.close()


def test_a_pool_of_workers_counts_attempts_outcomes_and_histograms_into_one_directory(
    database: Database, receiver: Receiver, queue: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    receiver.script["/s404"] = [Reply(404)]
    receiver.script["/s503"] = [Reply(503)]
    with socket.socket() as closed:  # a port nobody listens on: a connection error
        closed.bind(("127.0.0.1", 0))
        refusing = f"http://127.0.0.1:{closed.getsockname()[1]}/x"
    ids = [
        make_delivery(database, url)[0]
        for url in (receiver.url("/ok"), receiver.url("/s404"), receiver.url("/s503"), refusing)
    ]
    directory = tmp_path / "metrics"
    directory.mkdir()
    enqueue_deliveries(queue, ids)
    env = worker_env(database.url, redis_url, tmp_path, PROMETHEUS_MULTIPROC_DIR=str(directory))

    done = run_command(env, "worker", "--burst", "--processes", "2")

    assert done.returncode == 0, done.stderr
    samples, types = _parsed(_directory_exposition(directory))
    assert _value(samples, "postback_attempts_total", outcome="succeeded", error_class="none") == 1
    assert _value(samples, "postback_attempts_total", outcome="failed", error_class="http_status") == 1
    assert _value(samples, "postback_attempts_total", outcome="retry", error_class="http_status") == 1
    assert _value(samples, "postback_attempts_total", outcome="retry", error_class="connect") == 1
    assert _value(samples, "postback_deliveries_finished_total", outcome="succeeded") == 1
    assert _value(samples, "postback_deliveries_finished_total", outcome="failed") == 1
    for histogram in ("postback_attempt_duration_seconds", "postback_sale_to_send_delay_seconds"):
        assert types[histogram] == "histogram"
        assert _total(samples, f"{histogram}_count") == 4
        assert _total(samples, f"{histogram}_sum") > 0
        everything = [
            v
            for (name, labels), v in samples.items()
            if name == f"{histogram}_bucket" and ("le", "+Inf") in labels
        ]
        assert sum(everything) == 4
    assert _value(samples, "postback_sale_to_send_delay_seconds_count", event="sale") == 4


def test_a_worker_serves_its_hosts_metrics_on_its_port_and_the_counters_only_go_up(
    database: Database, receiver: Receiver, queue: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    # Without PROMETHEUS_MULTIPROC_DIR: the pool's parent makes a directory of its own for its children.
    env = worker_env(database.url, redis_url, tmp_path, PROMETHEUS_MULTIPROC_DIR="")
    worker = start_command(env, "worker", "--processes", "2", "--metrics-port", str(port))
    try:
        first, _ = make_delivery(database, receiver.url("/ok"))
        enqueue_deliveries(queue, [first])
        once = _scrape_until(port, lambda s: _succeeded(s) >= 1)
        second, _ = make_delivery(database, receiver.url("/ok"))
        enqueue_deliveries(queue, [second])
        twice = _scrape_until(port, lambda s: _succeeded(s) >= 2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)

    assert _succeeded(once) == 1 and _succeeded(twice) == 2
    for (name, labels), value in once.items():
        if name.endswith(("_total", "_count", "_sum", "_bucket")):
            assert twice.get((name, labels), 0.0) >= value, name
    assert _value(twice, "postback_attempt_duration_seconds_count", outcome="succeeded") == 2
    assert _value(twice, "postback_sale_to_send_delay_seconds_count", event="sale") == 2


def _succeeded(samples: Samples) -> float:
    return _value(samples, "postback_attempts_total", outcome="succeeded", error_class="none")


def _scrape_until(port: int, done: Callable[[Samples], bool], timeout_s: float = 30) -> Samples:
    deadline = time.monotonic() + timeout_s
    samples: Samples = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                samples, _ = _parsed(response.read().decode())
        except OSError:
            samples = {}  # not listening yet
        if done(samples):
            return samples
        time.sleep(0.2)
    raise AssertionError(f"the worker's metrics never showed it: {samples}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
