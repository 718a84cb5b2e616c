"""Real time: from a reported sale's POST to its postback reaching the publisher, at a steady rate.

    python -m bench.latency [--sqlite]

Production's shape on one machine: PostgreSQL (a fresh schema of the database named by `BENCH_DATABASE_URL`,
else `TEST_POSTGRES_URL`, else postgresql+psycopg://postgres@127.0.0.1:5432/test, dropped at the end; a
SQLite file with `--sqlite` or `BENCH_SQLITE=1`), its own Redis, the app under gunicorn (2 sync workers),
`flask --app app worker --processes 2`, `flask --app app pump`, and a receiver: a threaded HTTP server in
a process of its own that notes when each postback arrives, keyed by the order number (the postback's URL
carries `#on#`), and answers with TCP_NODELAY as asyncio and Node's HTTP server do (see `_Handler.setup`).

Sales are sent open-loop: each has a scheduled send time (`BENCH_RATE` per second, 200 by default, for
`BENCH_SECONDS`, 10), and sender threads with kept-alive connections take the next one when it is due, so a
slow answer does not lower the rate (how late any send left is printed). Each sale's send time is noted just
before its POST; once every postback has arrived (or after a timeout), it prints the counts and the 50th,
90th and 99th percentiles of (postback received - POST sent) in ms, beside the same of the POST's own answer
time and of the HTTP exchanges as the delivery log has them (the attempts' duration: with one receiver held to
`POSTBACK_HOST_CONCURRENCY` requests in flight, the exchange time bounds how many postbacks a second it
takes). A postback that never arrived counts as infinitely late. Last line `latency_p99_ms: <value>`. The
goal of issue #15: p50 <= 20 ms, p99 <= 100 ms.
"""

from __future__ import annotations

import http.client
import itertools
import json
import math
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl

from bench import _cpu
from bench._database import backend_pids, describe, fresh_database, sqlite_wanted
from bench._network import SeededNetwork, seed_network

ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
RATE = float(os.environ.get("BENCH_RATE", "200"))
# Enough threads that all being busy takes answers 64 / 200 s = 320 ms slow: the rate is the schedule's, not
# the server's, unless the server is far behind (the late sends are then counted and printed).
SENDERS = 64
WARM_UP_SALES = 20
WAIT_S = 30.0  # for the last postbacks, after the last send
LATE_MS = 5.0  # a send leaving this much after its scheduled time is counted as late
ORDER_PREFIX = "L-"


# --- the receiver: a process of its own, noting when each order's postback arrives ---


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.arrivals: dict[str, float] = {}  # order number -> time.monotonic() of its first postback
        self.duplicates = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the workers' client expects of a receiver

    def setup(self) -> None:
        # As asyncio and Node's HTTP server do by default. http.server writes an answer's headers and body
        # apart; with Nagle's algorithm on, the body waits for the headers' ACK, which the workers' kernel
        # delays up to 40 ms on a kept-alive connection. Every exchange took 40 ms, and 8 slots carried just
        # 200 postbacks a second.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        # First thing: the request line and headers are read, the handler's own work is not counted.
        arrived = time.monotonic()
        receiver = cast(Receiver, self.server)
        path, _, query = self.path.partition("?")
        params = dict(parse_qsl(query))
        with receiver.lock:
            if path == "/_arrivals":
                body = json.dumps({"arrivals": receiver.arrivals, "duplicates": receiver.duplicates})
            elif path == "/_count":
                prefix = params.get("prefix", "")
                body = str(sum(1 for order in receiver.arrivals if order.startswith(prefix)))
            else:
                order = params.get("on", "")
                if order in receiver.arrivals:
                    receiver.duplicates += 1
                receiver.arrivals.setdefault(order, arrived)
                body = "ok"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the signature http.server calls
        pass  # one line per postback would be the bench's whole output


def run_receiver(ports: Any) -> None:
    receiver = Receiver()
    ports.put(receiver.server_address[1])
    receiver.serve_forever()


@dataclass(frozen=True)
class ReceiverProcess:
    port: int
    process: multiprocessing.process.BaseProcess

    def ask(self, path: str) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path)
            return json.loads(connection.getresponse().read())
        finally:
            connection.close()

    def count(self, prefix: str) -> int:
        return int(self.ask(f"/_count?prefix={prefix}"))

    def arrivals(self) -> tuple[dict[str, float], int]:
        found = self.ask("/_arrivals")
        return found["arrivals"], int(found["duplicates"])


@contextmanager
def receiver() -> Iterator[ReceiverProcess]:
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    process = context.Process(target=run_receiver, args=(ports,), daemon=True)
    process.start()
    try:
        yield ReceiverProcess(ports.get(timeout=30), process)
    finally:
        process.kill()
        process.join()


# --- the system: seeded database, gunicorn, workers, pump ---


def seed(database_url: str, receiver_port: int) -> SeededNetwork:
    from dispatcher.db import Database
    from dispatcher.models import Base

    database = Database(database_url)
    try:
        Base.metadata.create_all(database.engine)
        with database.session() as session:
            url = f"http://127.0.0.1:{receiver_port}/pb?on=#on#&d=#deliveryid#"
            return seed_network(session, "Latency", url)
    finally:
        database.dispose()


@dataclass
class System:
    web_port: int
    processes: list[subprocess.Popen[bytes]]


@contextmanager
def system(env: dict[str, str]) -> Iterator[System]:
    """gunicorn (2 sync workers), `flask worker --processes 2` and `flask pump`, each in its own process
    group (the worker pool's children are stopped with it); stopped on the way out."""
    from dispatcher.redis_server import free_port

    port = free_port()
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    commands = [
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
        + ["--log-level", "warning", "app:create_app()"],
        [*flask, "worker", "--processes", "2"],
        [*flask, "pump"],
    ]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for command in commands:
            processes.append(subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True))
        yield System(port, processes)
    finally:
        stop(processes)


def stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each (gunicorn and the worker pool pass it on), then SIGKILL to what is left of its
    process group: its own (start_new_session), so only what it started."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for process in processes:
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for_web(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.2)
    raise SystemExit(f"the web app did not answer /healthz within {timeout_s:g} s")


# --- the load: open-loop senders ---


@dataclass
class Sent:
    """Per sale, by its index: when its POST was scheduled, sent and answered (time.monotonic()), and how."""

    due: list[float]
    sent: list[float]
    answered: list[float]
    status: list[int]


def send_sales(port: int, network: SeededNetwork, prefix: str, count: int, rate: float) -> Sent:
    """`count` sales at `rate` per second, open-loop: sale i is sent at its scheduled time by whichever
    sender thread is free, whatever the answers to the others take."""
    start = time.monotonic() + 0.2
    record = Sent([start + i / rate for i in range(count)], [0.0] * count, [0.0] * count, [0] * count)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {network.api_key}"}
    numbers = itertools.count()  # shared by the threads; next() on it is atomic

    def sender() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while (i := next(numbers)) < count:
            pause = record.due[i] - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            body = json.dumps(
                {"click_id": network.click_id, "order_number": f"{prefix}{i}", "sale_amount": "25.00"}
            )
            record.sent[i] = time.monotonic()
            try:
                connection.request("POST", "/api/v1/transactions", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                record.answered[i], record.status[i] = time.monotonic(), response.status
                if response.will_close:  # gunicorn's sync workers close after each answer
                    connection.close()
            except (OSError, http.client.HTTPException):
                record.answered[i], record.status[i] = time.monotonic(), -1
                connection.close()
        connection.close()

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return record


def wait_for_postbacks(
    receiver_process: ReceiverProcess, prefix: str, expected: int, timeout_s: float
) -> int:
    deadline = time.monotonic() + timeout_s
    while (got := receiver_process.count(prefix)) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return got


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` of 1) of `values`: the smallest value with at least that share of
    the values at or below it."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def spread(values: Sequence[float]) -> str:
    return ", ".join(f"p{round(share * 100)} {percentile(values, share):.1f}" for share in (0.5, 0.9, 0.99))


# --- the run ---


def main(argv: Sequence[str] | None = None) -> None:
    sqlite = sqlite_wanted("python -m bench.latency", __doc__, argv)
    from bench.delivery import engine_env
    from dispatcher.redis_server import EmbeddedRedis

    with (
        tempfile.TemporaryDirectory(prefix="bench-latency-") as scratch,
        receiver() as receiver_process,
        fresh_database(Path(scratch), sqlite=sqlite, prefix="bench_latency") as database_url,
    ):
        redis_server = EmbeddedRedis(Path(scratch) / "redis", persist=False)
        try:
            # gunicorn reads the repository's gunicorn.conf.py: no access line for each request of the load.
            redis_url = redis_server.start()
            env = engine_env(database_url, redis_url, Path(scratch), ACCESS_LOG="0")
            network = seed(database_url, receiver_process.port)
            with system(env) as running:
                lines = measure(running, network, receiver_process, database_url, redis_url)
        finally:
            redis_server.stop()
    for line in lines:
        print(line)


def measure(
    running: System,
    network: SeededNetwork,
    receiver_process: ReceiverProcess,
    database_url: str,
    redis_url: str,
) -> list[str]:
    wait_for_web(running.web_port)
    count = max(1, round(SECONDS * RATE))
    print(
        f"database: {describe(database_url)}; load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)"
    )
    print(
        "gunicorn 2 sync workers; flask worker --processes 2; flask pump; "
        f"receiver on 127.0.0.1:{receiver_process.port}"
    )
    # Warm-up, not measured: imports, connections, each worker's first job.
    warm = send_sales(running.web_port, network, "warm-", WARM_UP_SALES, 20)
    if wait_for_postbacks(receiver_process, "warm-", WARM_UP_SALES, 60) < WARM_UP_SALES:
        raise SystemExit(f"the warm-up's postbacks did not arrive (answers: {sorted(set(warm.status))})")
    print(
        f"open loop: {RATE:g} sales/s for {SECONDS:g} s ({count} sales), {SENDERS} sender threads", flush=True
    )
    before = cpu_by_role(running, receiver_process, database_url)
    jobs_before = jobs_run(redis_url)
    started = datetime.now(UTC)
    sent = send_sales(running.web_port, network, ORDER_PREFIX, count, RATE)
    accepted = [i for i in range(count) if sent.status[i] == 201]
    received = wait_for_postbacks(receiver_process, ORDER_PREFIX, len(accepted), WAIT_S)
    after = cpu_by_role(running, receiver_process, database_url)
    arrivals, duplicates = receiver_process.arrivals()
    per_sale = ", ".join(
        f"{role} {(after[role] - before.get(role, 0.0)) * 1e6 / max(1, len(accepted)):.0f}" for role in after
    )
    print(f"CPU per sale, us (all its work, postback included): {per_sale}")
    jobs = jobs_run(redis_url) - jobs_before
    print(f"RQ jobs run: {jobs} for {len(accepted)} sales ({len(accepted) / max(1, jobs):.1f} sales per job)")
    exchanged = exchanges(database_url, started)
    print(f"HTTP exchange with the receiver (attempts' duration), ms: {spread(exchanged)}")
    return report(sent, accepted, received, arrivals, duplicates)


def jobs_run(redis_url: str) -> int:
    """Jobs the workers have run so far (rq's own count, kept in Redis): each costs a worker its fixed CPU
    (bench.jobs), whatever it carries."""
    import redis
    from rq import Worker

    connection = redis.Redis.from_url(redis_url)
    try:
        return sum(w.successful_job_count + w.failed_job_count for w in Worker.all(connection=connection))
    finally:
        connection.close()


def exchanges(database_url: str, since: datetime) -> list[float]:
    """How long each attempt since `since` took the workers, request sent to answer read, as the delivery log
    has it: what holds one of the receiver's `POSTBACK_HOST_CONCURRENCY` slots. The receiver answers at once,
    so a long exchange is the workers waiting for a CPU, or the connection (see `_Handler.setup`)."""
    from sqlalchemy import select

    from dispatcher.db import Database
    from dispatcher.models import Attempt

    database = Database(database_url)
    try:
        with database.connect() as connection:
            logged = Attempt.started_at >= since, Attempt.duration_ms.is_not(None)
            found = connection.scalars(select(Attempt.duration_ms).where(*logged))
            return [float(ms) for ms in found if ms is not None]
    finally:
        database.dispose()


def cpu_by_role(running: System, receiver_process: ReceiverProcess, database_url: str) -> dict[str, float]:
    """CPU seconds so far of each part of the system: where a sale's real time goes when the machine is
    the limit."""
    web, workers, pump = (_cpu.of_group(process.pid) for process in running.processes)
    usage = os.times()
    return {
        "gunicorn": web,
        "workers": workers,
        "pump": pump,
        "receiver": _cpu.of_pid(receiver_process.process.pid or 0),
        "senders (bench)": usage.user + usage.system,
        "postgres (this run)": _cpu.of_pids(backend_pids(database_url)),
    }


def report(
    sent: Sent, accepted: list[int], received: int, arrivals: dict[str, float], duplicates: int
) -> list[str]:
    count = len(sent.sent)
    lateness = [(sent.sent[i] - sent.due[i]) * 1000 for i in range(count)]
    late = sum(1 for ms in lateness if ms > LATE_MS)
    others = sorted({status for status in sent.status if status != 201})
    # A postback that never came is later than any that did: it takes the top ranks.
    latencies = [(arrivals.get(f"{ORDER_PREFIX}{i}", math.inf) - sent.sent[i]) * 1000 for i in accepted]
    answers = [(sent.answered[i] - sent.sent[i]) * 1000 for i in accepted]
    elapsed = max(sent.sent) - min(sent.sent) if count > 1 else 0.0
    return [
        f"sent: {count} in {elapsed:.2f} s ({(count - 1) / elapsed if elapsed else 0:.0f}/s), answered 201: "
        f"{len(accepted)}" + (f"; other answers {others}" if others else ""),
        f"sends more than {LATE_MS:g} ms behind schedule: {late} (latest {max(lateness):.1f} ms)",
        f"postbacks received: {received} of {len(accepted)} within {WAIT_S:g} s of the last send "
        f"(duplicates: {duplicates})",
        f"answer time (POST sent -> answer read), ms: {spread(answers)}",
        f"postback latency (POST sent -> postback received), ms: {spread(latencies)}, "
        f"max {max(latencies, default=math.nan):.1f}",
        f"latency_p50_ms: {percentile(latencies, 0.5):.1f}",
        f"latency_p99_ms: {percentile(latencies, 0.99):.1f}",
    ]


if __name__ == "__main__":
    main()
