"""What one RQ job costs a worker: the engine's own work for a job of 1, 5 and 20 deliveries, beside the CPU
rq itself spends on a job that does nothing, measured in the same run.

    python -m bench.jobs [--sqlite]

At a steady moderate rate (bench.latency's 100-200 sales/s) the web's hand-over sends a job for nearly every
sale, so a worker's CPU per delivery is its fixed cost per job: rq's bookkeeping (about 27 round trips to
Redis per job) plus the engine's claim, load, log and flush. This bench measures both in this one process
(time.process_time, every thread of it): `Engine.send_batch` on a database of its own (PostgreSQL unless
`--sqlite`, see bench._database), its receiver slots in a Redis of its own, sending to a local HTTP
receiver (25 ports, so that the per-host cap of 8 never defers a send); and an rq `SimpleWorker` in burst
mode over `BENCH_JOBS` (200) jobs of `os.getpid`, beside our worker class (`workers.worker.QueueWorker`,
which renews its registration less often) over as many: the lowest of 3 interleaved rounds each. The
receiver runs in this process too: its CPU (about a tenth of a delivery's) is counted with the engine's.

Last line: `engine_job_vs_rq_job: <ratio>`, the engine's CPU for a one-delivery job over rq's for an empty
one.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis
from rq import Queue, SimpleWorker

from bench._database import describe, fresh_database, sqlite_wanted

JOBS = int(os.environ.get("BENCH_JOBS", "200"))
SIZES = (1, 5, 20)
PORTS = 25


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the engine's client expects of a receiver

    def setup(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see bench.latency's receiver
        super().setup()

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the signature http.server calls
        pass


def receivers(count: int) -> tuple[list[int], list[ThreadingHTTPServer]]:
    servers = []
    for _ in range(count):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    return [server.server_address[1] for server in servers], servers


def rq_job_cpu(connection: redis.Redis, jobs: int, *, ours: bool) -> float:
    """CPU seconds a worker spends in rq per job that does nothing (kept as long as ours once finished):
    rq's own SimpleWorker, or ours (`workers.worker.QueueWorker`: it renews its registration less often)."""
    from dispatcher.queueing import RESULT_TTL_S
    from workers.worker import QueueWorker

    queue = Queue("bench-noop", connection=connection)
    queue.enqueue_many([Queue.prepare_data("os.getpid", result_ttl=RESULT_TTL_S) for _ in range(jobs)])
    if ours:
        worker: SimpleWorker = QueueWorker([queue], connection=connection, stop=threading.Event())
    else:
        worker = SimpleWorker([queue], connection=connection)
    started = time.process_time()
    worker.work(burst=True, logging_level="WARNING")
    return (time.process_time() - started) / jobs


def rq_job_cpus(connection: redis.Redis, jobs: int, rounds: int = 3) -> tuple[float, float]:
    """(rq's SimpleWorker, ours): the lowest of `rounds` interleaved measurements of each."""
    plain, ours = [], []
    for _ in range(rounds):
        plain.append(rq_job_cpu(connection, jobs, ours=False))
        ours.append(rq_job_cpu(connection, jobs, ours=True))
    return min(plain), min(ours)


def engine_job_cpu(database_url: str, redis_url: str, ports: Sequence[int]) -> dict[int, float]:
    """CPU seconds per job of `Engine.send_batch`, by deliveries per job, each job waited for until its
    outcomes are in the database."""
    from bench.delivery import record_sales, seed
    from dispatcher.config import from_mapping
    from dispatcher.db import Database
    from workers import cluster
    from workers.engine import Engine
    from workers.settings import EngineSettings

    database = Database(database_url)
    network = seed(database, ports)
    settings = from_mapping(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "bench-secret-key-long-enough",
            "POSTBACK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "DISPATCHER_ENV": "development",
        }
    )
    queue_connection = redis.Redis.from_url(redis_url)
    slots = cluster.connect(redis_url)
    engine = Engine(database, settings, EngineSettings(), name="bench", hand_on=None, redis_client=slots)
    per_job: dict[int, float] = {}
    first = 0
    try:
        for size in (5, *SIZES):  # the first round warms up (imports, connections, prepared statements)
            batches = []
            for _ in range(JOBS):
                batches.append(record_sales(database, queue_connection, network, first, size))
                first += size
            queue_connection.flushdb()  # record_sales queued them for RQ: only this engine sends them
            started = time.process_time()
            for ids in batches:
                engine.send_batch(ids)
                if not engine.drain(30):
                    raise SystemExit("sends did not settle within 30 s")
            per_job[size] = (time.process_time() - started) / JOBS
    finally:
        engine.close()
        slots.close()
        database.engine.dispose()
    return per_job


def main(argv: Sequence[str] | None = None) -> None:
    sqlite = sqlite_wanted("python -m bench.jobs", __doc__, argv)
    from dispatcher.redis_server import EmbeddedRedis

    ports, servers = receivers(PORTS)
    with (
        tempfile.TemporaryDirectory(prefix="bench-jobs-") as scratch,
        fresh_database(Path(scratch), sqlite=sqlite, prefix="bench_jobs") as database_url,
    ):
        redis_server = EmbeddedRedis(Path(scratch) / "redis", persist=False)
        try:
            redis_url = redis_server.start()
            print(f"database: {describe(database_url)}; {JOBS} jobs per figure; {os.cpu_count()} CPUs")
            rq_cpu, worker_cpu = rq_job_cpus(redis.Redis.from_url(redis_url), JOBS)
            print(f"rq SimpleWorker, a job that does nothing: {rq_cpu * 1000:.2f} ms CPU per job", flush=True)
            print(
                f"our worker (workers.worker.QueueWorker), the same: {worker_cpu * 1000:.2f} ms CPU per job "
                f"(x{worker_cpu / rq_cpu:.2f})",
                flush=True,
            )
            engine_cpu = engine_job_cpu(database_url, redis_url, ports)
        finally:
            redis_server.stop()
            for server in servers:
                server.shutdown()
    for size, seconds in engine_cpu.items():
        print(
            f"engine, {size} deliveries per job: {seconds * 1000:.2f} ms CPU per job, "
            f"{seconds * 1000 / size:.2f} ms per delivery"
        )
    one = engine_cpu[1] + worker_cpu
    print(f"a one-delivery job all in (engine + our worker's rq): {one * 1000:.2f} ms CPU")
    print(f"engine_job_vs_rq_job: {engine_cpu[1] / rq_cpu:.2f}")


if __name__ == "__main__":
    main()
