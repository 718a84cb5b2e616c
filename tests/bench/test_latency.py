"""The real-time bench's arithmetic and receiver (percentiles by rank, a missing postback as the latest of
all, arrivals noted once per order), and a brief run of it on each database, which must receive every
postback."""

from __future__ import annotations

import math
import re
import threading
import urllib.request
from collections.abc import Iterator

import pytest

from bench.latency import ORDER_PREFIX, Receiver, Sent, percentile, report
from tests.bench.conftest import DATABASES, RunBench


@pytest.mark.parametrize(
    ("values", "share", "expected"),
    [
        ([5.0], 0.99, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
        ([float(n) for n in range(1, 101)], 0.9, 90.0),
        ([float(n) for n in range(1, 101)], 0.99, 99.0),
        ([float(n) for n in range(1, 201)], 0.99, 198.0),
        ([3.0, 1.0, 2.0], 1.0, 3.0),
    ],
)
def test_percentiles_are_by_nearest_rank(values: list[float], share: float, expected: float) -> None:
    assert percentile(values, share) == expected


def sent(count: int) -> Sent:
    """Sales sent every 10 ms on schedule, each answered 2 ms later with a 201."""
    times = [i * 0.01 for i in range(count)]
    return Sent(times, list(times), [t + 0.002 for t in times], [201] * count)


def test_the_report_ends_with_the_99th_percentile_of_received_minus_sent() -> None:
    record = sent(100)
    arrivals = {f"{ORDER_PREFIX}{i}": record.sent[i] + (i + 1) / 1000 for i in range(100)}  # 1..100 ms

    lines = report(record, list(range(100)), 100, arrivals, 0)

    assert lines[-2:] == ["latency_p50_ms: 50.0", "latency_p99_ms: 99.0"]


def test_a_postback_that_never_came_counts_as_the_latest() -> None:
    record = sent(100)
    arrivals = {f"{ORDER_PREFIX}{i}": record.sent[i] + 0.001 for i in range(98)}  # two never arrive

    lines = report(record, list(range(100)), 98, arrivals, 0)

    assert lines[-1] == "latency_p99_ms: inf"
    assert float(lines[-1].split(": ")[1]) == math.inf


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_receiver_notes_each_orders_first_postback(receiver: Receiver) -> None:
    base = f"http://127.0.0.1:{receiver.server_address[1]}"
    for order in ("L-1", "L-2", "L-1", "warm-1"):
        with urllib.request.urlopen(f"{base}/pb?on={order}&d=7", timeout=5) as response:
            assert response.read() == b"ok"

    with urllib.request.urlopen(f"{base}/_count?prefix=L-", timeout=5) as response:
        assert response.read() == b"2"
    assert sorted(receiver.arrivals) == ["L-1", "L-2", "warm-1"]
    assert receiver.duplicates == 1


@pytest.mark.processes
@pytest.mark.parametrize("database", DATABASES)
def test_a_brief_run_receives_every_postback(run_bench: RunBench, database: str) -> None:
    lines = run_bench("bench.latency", database, BENCH_SECONDS="1", BENCH_RATE="20")

    text = "\n".join(lines)
    assert "postbacks received: 20 of 20" in text, lines
    assert re.fullmatch(r"latency_p99_ms: \d+\.\d", lines[-1]), lines
    # Where the CPU went, each part of the system, and how many jobs the workers ran for the 20 sales.
    cpu = re.search(r"CPU per sale, us \(all its work, postback included\): (.*)", text)
    assert cpu is not None, lines
    spent = dict(part.rsplit(" ", 1) for part in cpu.group(1).split(", "))
    assert {"gunicorn", "workers", "pump", "receiver", "senders (bench)"} <= set(spent), spent
    assert int(spent["gunicorn"]) > 0 and int(spent["workers"]) > 0, spent
    jobs = re.search(r"RQ jobs run: (\d+) for 20 sales", text)
    assert jobs is not None and int(jobs.group(1)) >= 1, lines
    # Each postback's exchange, from the delivery log: 20 attempts, each some milliseconds long.
    exchange = re.search(r"HTTP exchange with the receiver \(attempts' duration\), ms: p50 (\S+), p90", text)
    assert exchange is not None and 0 <= float(exchange.group(1)) < 2000, lines
