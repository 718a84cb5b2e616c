"""The worker entry point: RQ `SimpleWorker`s (no fork per job) around this process's delivery engine.

`flask --app app worker [--burst] [--processes N]` lands here; so does `python -m workers.worker`.
Configuration comes from the environment (`dispatcher.config.from_env`, `workers.settings.from_env`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from types import FrameType
from typing import Any

import redis
from redis.client import Pipeline
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.worker import DequeueStrategy

from dispatcher import config, instruments, logs
from dispatcher.broker import Broker
from dispatcher.queueing import LANES, enqueue_by_lane
from workers import cluster, context, metrics, planner_costs, settings
from workers.engine import Engine, worker_name

log = logging.getLogger(__name__)

# After rq quits on a Redis error: the first pause before working again, and the longest; a work loop that
# ran longer than RAN_FOR_A_WHILE_S starts the pauses afresh.
REDIS_RETRY_FIRST_S = 1.0
REDIS_RETRY_MAX_S = 15.0
RAN_FOR_A_WHILE_S = 60.0
# rq's heartbeat: an idle worker renews its registration every WORKER_TTL_S - 15 s (its wait for a job), and
# the registration expires WORKER_TTL_S + 60 s after the last renewal. rq's default, 420, kept a killed
# worker on the console for 8 minutes; this one for 2 (dispatcher.heartbeats).
WORKER_TTL_S = 60
# rq renews a worker's registration (3 commands, each its own round trip) up to three times a job and asks
# whether workers are suspended once more: on a job that does nothing, 2.09 ms of rq's CPU became 1.32 with
# both done at most this often (bench.jobs). A renewal keeps the registration for WORKER_TTL_S + 60 s (from
# a job's start: the job's timeout plus 60 s), so one every 10 s, plus at most one wait for a job
# (WORKER_TTL_S - 15 s), leaves it a wide margin; the renewals rq sends inside a pipeline with a job's other
# writes cost no round trip and always go through. Between jobs, `rq suspend` is seen within a second.
HEARTBEAT_EVERY_S = 10.0
SUSPENSION_CHECK_EVERY_S = 1.0


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
    database = planner_costs.worker_database(resolved.database_url)
    engine = Engine(
        database,
        resolved,
        tuning,
        hand_on=lambda ready: enqueue_by_lane(connection, ready),
        redis_client=slots_connection,
    )
    context.install(engine)
    try:
        stopped = _work_until_stopped(connection, queues, burst=burst)
        if burst and not stopped:
            _burst_on(engine, connection, queues, tuning.total_timeout_s + 5)
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


class QueueWorker(SimpleWorker):
    """rq's SimpleWorker that shares the process's stop event: set by a SIGTERM or SIGINT whoever's handler
    takes it (rq's during its work loop, ours in between), so that the worker loop knows the process was asked
    to stop rather than rq having quit on its own. Its registration is renewed and the suspension flag read
    less often than rq does (HEARTBEAT_EVERY_S, SUSPENSION_CHECK_EVERY_S)."""

    def __init__(self, *args: Any, stop: threading.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop = stop
        self._beat_at = -HEARTBEAT_EVERY_S  # monotonic: the last renewal written on its own
        self._suspension_checked_at = -SUSPENSION_CHECK_EVERY_S

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        now = time.monotonic()
        if now - self._beat_at < HEARTBEAT_EVERY_S:
            return
        super().heartbeat(timeout, pipeline)
        self._beat_at = now  # only once written: after a failed one (Redis away), the next is not skipped

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()
        try:
            super().request_stop(signum, frame)  # type: ignore[no-untyped-call]
        except redis.RedisError:
            # A busy worker notes the request in Redis, which may be what is down: the stop stands anyway
            # (rq's loop flag is set before that write, and `stop` is ours).
            log.warning("worker %s: stop requested while Redis cannot be reached", self.name)

    def check_for_suspension(self, burst: bool) -> None:
        # Once per turn of rq's loop: a SIGTERM taken by our handler just before rq installed its own.
        if self.stop.is_set():
            raise StopRequested()
        now = time.monotonic()
        if now - self._suspension_checked_at >= SUSPENSION_CHECK_EVERY_S:
            self._suspension_checked_at = now
            super().check_for_suspension(burst)


def _burst_on(engine: Engine, connection: redis.Redis, queues: Sequence[str], drain_s: float) -> None:
    """A burst ends once the queues are empty, but a send settling after that hands on the deliveries it
    held back (its transaction's next events) as new jobs: a burst works those too, rather than leave them
    queued (the next event of a sale sent in the same burst arrived only with the next burst)."""
    stop = threading.Event()
    while True:
        # rq's handlers stay installed after its loop: a signal while draining would reach a finished worker.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda _signum, _frame: stop.set())
        if not engine.drain(drain_s) or stop.is_set() or not _queued(connection, queues):
            return
        if _work_until_stopped(connection, queues, burst=True):
            return


def _queued(connection: redis.Redis, queues: Sequence[str]) -> bool:
    try:
        return any(Queue(name, connection=connection).count for name in queues)
    except redis.RedisError:  # gone: what it holds waits for the pump, as after any burst
        return False


def _work_until_stopped(connection: redis.Redis, queues: Sequence[str], *, burst: bool) -> bool:
    """rq's work loop, started again when it quits on its own (rq logs the error and returns; when Redis went
    away during a job, every worker process used to exit: bench.cluster) until the process is asked to stop.
    The engine, its sends in flight and its outcomes carry on meanwhile; the pump hands over again what was
    queued. True if the process was asked to stop (a burst that ran out of work returns False)."""
    stop = threading.Event()
    pause_s = REDIS_RETRY_FIRST_S
    while not stop.is_set():
        worker = QueueWorker(
            [Queue(name, connection=connection) for name in queues],
            connection=connection,
            name=f"{worker_name()}-{uuid.uuid4().hex[:6]}",
            worker_ttl=WORKER_TTL_S,
            stop=stop,
        )
        logs.set_process_field("worker", worker.name)
        log.info("worker %s started on queues %s", worker.name, ", ".join(queues))
        started = time.monotonic()
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
            _let_go(worker)
        if burst or stop.is_set():
            return stop.is_set()
        # Until the next work loop installs rq's handlers, ours: a SIGTERM or SIGINT only sets `stop`, which
        # every wait here watches (rq's, left installed, would raise in the middle of this).
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda _signum, _frame: stop.set())
        if time.monotonic() - started > RAN_FOR_A_WHILE_S:
            pause_s = REDIS_RETRY_FIRST_S  # a new trouble: quick to come back; a loop of quick quits: slower
        log.warning("worker %s stopped working (Redis?); starting again in %g s", worker.name, pause_s)
        if stop.wait(pause_s):
            return True
        # Until Redis answers, growing pauses (bounded): a Redis down for long is asked a few times a minute.
        while not _answers(connection):
            pause_s = min(pause_s * 2, REDIS_RETRY_MAX_S)
            if stop.wait(pause_s):
                return True
        with contextlib.suppress(redis.RedisError):
            worker.register_death()  # type: ignore[no-untyped-call]  # if it could not before: the console no longer counts it alive
        pause_s = min(pause_s * 2, REDIS_RETRY_MAX_S)
    return True


def _let_go(worker: SimpleWorker) -> None:
    """What rq's teardown did not reach when registering the worker's death failed: its subscription for
    commands, whose thread would otherwise retry for ever (one more after each Redis outage)."""
    if worker.pubsub_thread is not None:
        worker.pubsub_thread.stop()
        worker.pubsub_thread.join(timeout=1)
    if worker.pubsub is not None:
        with contextlib.suppress(redis.RedisError, OSError):
            worker.pubsub.close()


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
