"""`flask --app app worker` and `flask --app app pump`: the delivery engine's commands."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from types import FrameType

import click
import redis
from flask import Flask, current_app

from dispatcher import logs
from dispatcher.broker import Broker
from dispatcher.config import Settings
from dispatcher.db import Database
from dispatcher.heartbeats import PumpHeartbeat
from workers import pump as pump_module
from workers import settings
from workers.metrics import serve_host
from workers.worker import run_pool, run_worker


@click.command("worker", help="Run RQ workers that send postbacks (SimpleWorker; --processes for more).")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option(
    "--processes", default=1, show_default=True, type=click.IntRange(min=1), help="Worker processes."
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=1, max=65535),
    help="Serve this host's worker metrics (Prometheus) on this port, at /metrics.",
)
def worker_command(burst: bool, processes: int, metrics_port: int | None) -> None:
    resolved = _settings()
    logs.configure(resolved)
    if processes > 1:
        sys.exit(run_pool(processes, burst=burst, resolved=resolved, metrics_port=metrics_port))
    if metrics_port is not None:
        serve_host(metrics_port, children=False)
    run_worker(burst=burst, resolved=resolved)


@click.command("pump", help="Hand due deliveries (retries, lost jobs, expired leases) to RQ every second.")
@click.option("--once", is_flag=True, help="One pass, print what was handed out, exit.")
def pump_command(once: bool) -> None:
    resolved = _settings()
    logs.configure(resolved)
    tuning = settings.from_env()
    broker = Broker(resolved)
    connection = redis.Redis.from_url(broker.url, socket_connect_timeout=2, socket_timeout=10)
    database = Database(resolved.database_url)
    try:
        if once:
            handed = pump_module.hand_out(database, connection, tuning)
            click.echo(json.dumps({"first": handed.first, "retry": handed.retry}))
            return
        stop = threading.Event()

        def request_stop(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        heartbeat = PumpHeartbeat(connection, tuning.pump_heartbeat_ttl_s)
        try:
            pump_module.run(database, connection, tuning, stop=stop, heartbeat=heartbeat)
        finally:
            with contextlib.suppress(redis.RedisError):  # unsaid, it expires by itself
                heartbeat.stop()
    finally:
        database.dispose()
        connection.close()


def _settings() -> Settings:
    # The app Flask's CLI built for this command, from the environment (create_app refused a bad one).
    resolved: Settings = current_app.extensions["dispatcher.settings"]
    return resolved


def init_app(app: Flask) -> None:
    app.cli.add_command(worker_command)
    app.cli.add_command(pump_command)
