"""The worker entry point: RQ `SimpleWorker`s (no fork per job) around this process's delivery engine.

`flask --app app worker [--burst] [--processes N]` lands here; so does `python -m workers.worker`.
Configuration comes from the environment (`dispatcher.config.from_env`, `workers.settings.from_env`).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from types import FrameType

import redis
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.worker import DequeueStrategy

from dispatcher import config, instruments, logs
from dispatcher.broker import Broker
from dispatcher.db import Database
from dispatcher.queueing import LANES, enqueue_by_lane
from workers import cluster, context, metrics, settings
from workers.engine import Engine, worker_name

log = logging.getLogger(__name__)

# After rq quits on a Redis error: the first pause before working again, and the longest.
REDIS_RETRY_FIRST_S = 1.0
REDIS_RETRY_MAX_S = 15.0
# rq's heartbeat: an idle worker renews its registration every WORKER_TTL_S - 15 s (its wait for a job), and
# the registration expires WORKER_TTL_S + 60 s after the last renewal. rq's default, 420, kept a killed
# worker on the console for 8 minutes; this one for 2 (dispatcher.heartbeats).
WORKER_TTL_S = 60


def run_worker(
    *,
    burst: bool = False,
    queues: Sequence[str] = LANES,
    resolved: config.Settings | None = None,
    tuning: settings.EngineSettings | None = None,
) -> bool:
    """One RQ worker in this process until stopped (or, with `burst`, until the queues are empty). Settings
    come from the environment unless given. True if every send it started was settled in the database."""
    resolved = config.from_env() if resolved is None else resolved
    tuning = settings.from_env() if tuning is None else tuning
    broker = Broker(resolved)
    connection = redis.Redis.from_url(broker.url)
    slots_connection = cluster.connect(broker.url)  # receiver caps shared with every worker process
    database = Database(resolved.database_url)
    engine = Engine(
        database,
        resolved,
        tuning,
        hand_on=lambda ready: enqueue_by_lane(connection, ready),
        redis_client=slots_connection,
    )
    context.install(engine)
    try:
        _work_until_stopped(connection, queues, burst=burst)
    finally:
        # Requests still in flight finish and are recorded; a harder stop leaves them to their leases.
        settled = engine.drain(tuning.total_timeout_s + 5)
        engine.close()
        context.install(None)  # its jobs must not find a closed engine (a process may run another worker)
        logs.set_process_field("worker", None)
        database.dispose()
        connection.close()
        slots_connection.close()
    return settled


class _Worker(SimpleWorker):
    """rq's SimpleWorker, remembering whether it was asked to stop (SIGTERM, SIGINT) or quit on its own."""

    stop_asked = False

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_asked = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]


def _work_until_stopped(connection: redis.Redis, queues: Sequence[str], *, burst: bool) -> None:
    """rq's work loop, started again when it quits on a Redis error (rq logs it and returns: a Redis restart
    made every worker process exit, bench.cluster) until the process is asked to stop. The engine, its
    sends in flight and its outcomes carry on meanwhile; the pump hands over again what was queued."""
    pause_s = REDIS_RETRY_FIRST_S
    while True:
        worker = _Worker(
            [Queue(name, connection=connection) for name in queues],
            connection=connection,
            name=f"{worker_name()}-{uuid.uuid4().hex[:6]}",
            worker_ttl=WORKER_TTL_S,
        )
        logs.set_process_field("worker", worker.name)
        log.info("worker %s started on queues %s", worker.name, ", ".join(queues))
        try:
            # Round robin: neither lane starves the other when both have work.
            worker.work(
                burst=burst,
                logging_level="WARNING",
                with_scheduler=False,
                dequeue_strategy=DequeueStrategy.ROUND_ROBIN,
            )
        except redis.RedisError as exc:  # its last words to Redis (registering its death) failed too
            log.warning("worker %s could not sign off from Redis: %s", worker.name, exc)
        # Until Redis answers, and at least a pause (growing, bounded) so that a Redis down for long is
        # asked a few times a minute, not in a loop. Its signal handlers stay installed: SIGTERM or SIGINT
        # meanwhile raises StopRequested (or SystemExit) here, and the process stops as asked.
        try:
            if burst or worker.stop_asked:
                return
            log.warning("worker %s stopped working (Redis?); starting again in %g s", worker.name, pause_s)
            time.sleep(pause_s)
            while not _answers(connection):
                pause_s = min(pause_s * 2, REDIS_RETRY_MAX_S)
                time.sleep(pause_s)
        except StopRequested:
            return
        pause_s = REDIS_RETRY_FIRST_S


def _answers(connection: redis.Redis) -> bool:
    try:
        return bool(connection.ping())
    except redis.RedisError:  # down, or loading its data after a restart
        return False


def run_pool(
    processes: int,
    *,
    burst: bool = False,
    resolved: config.Settings | None = None,
    metrics_port: int | None = None,
) -> int:
    """N worker processes; SIGINT/SIGTERM are passed on and waited for. Returns the worst exit status.
    With `metrics_port`, this parent serves the children's metrics (`workers.metrics.serve_host`)."""
    resolved = config.from_env() if resolved is None else resolved
    broker = Broker(resolved)
    env = dict(os.environ, REDIS_URL=broker.url)  # all share one Redis (the embedded one, if unset)
    metrics_dir = instruments.multiprocess_dir()
    made_dir = metrics_port is not None and metrics_dir is None  # a temporary one, removed at the end
    if metrics_port is not None:
        metrics_dir = metrics.serve_host(metrics_port, children=True)
    if metrics_dir is not None:
        env[instruments.MULTIPROC_DIR] = metrics_dir
    command = [sys.executable, "-m", "workers.worker", *(["--burst"] if burst else [])]
    children = [subprocess.Popen(command, env=env) for _ in range(processes)]

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return max(child.wait() for child in children)
    finally:
        for child in children:
            instruments.process_exited(child.pid, metrics_dir)
        if made_dir and metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        broker.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers.worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--processes", type=int, default=1, help="number of worker processes")
    parser.add_argument("--metrics-port", type=int, help="serve this host's worker metrics on this port")
    args = parser.parse_args(argv)
    try:
        resolved = config.from_env()
    except config.ConfigError as error:
        parser.exit(1, f"Error: {error}\n")  # one line, as `flask --app app worker` says it
    logs.configure(resolved)
    if args.processes > 1:
        sys.exit(
            run_pool(args.processes, burst=args.burst, resolved=resolved, metrics_port=args.metrics_port)
        )
    if args.metrics_port is not None:
        metrics.serve_host(args.metrics_port, children=False)
    run_worker(burst=args.burst, resolved=resolved)


if __name__ == "__main__":
    main()
