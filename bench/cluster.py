"""A multi-host rehearsal on one machine: the production topology, one host lost, Redis restarted, a rolling
upgrade of the web hosts, while sales keep coming.

    python -m bench.cluster [--sales 20000] [--timeout 900]

Stands up what README's "Deploying on several hosts" describes, each "host" a group of processes with a
directory of its own (`INSTANCE_PATH`): 2 web hosts (gunicorn, 2 workers each, the repository's
gunicorn.conf.py), 3 worker hosts (`python -m workers.worker`) and 2 pumps, on one PostgreSQL and one Redis
(`redis-server` with AOF, `appendfsync everysec`, `noeviction`), and a sink answering in 50 ms on 2 ports (two
publishers' trackers). Posters send the sales to the web hosts in turn, as a load balancer would, and to the
other one while a host is down. While they do:

- at a quarter of the sales, worker host 1 loses every process (`kill -9`) and comes back 5 s later;
- at half, Redis is stopped (SIGTERM, so the AOF is complete) and started again on the same port and files;
- at three quarters, the web hosts are restarted one after the other (SIGTERM, start, wait until `/readyz`).

At the end every delivery must be succeeded and the sink must have seen each delivery id. Prints the lost and
duplicate counts, how long the lost host's claimed deliveries took to be sent again, how long deliveries
stopped when Redis restarted, each worker host's share of the attempts (by the pids it ran), and last
`cluster_lost: <n>`. Database: PostgreSQL, a fresh schema (dropped after) as in `bench._database`.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests
from sqlalchemy import func, select

from bench._database import autovacuum_warning, describe, exit_on_sigterm, fresh_database
from bench.chaos import POSTBACKS, SINK_DELAY_S, Kill, Network, leased_by, post_sales, resend_delays, seed
from bench.delivery import ROOT, SinkProcess, engine_env, sink
from dispatcher.db import Database
from dispatcher.models import Attempt, Delivery
from dispatcher.redis_server import find_redis_server, free_port

WEB_HOSTS = 2
WORKER_HOSTS = 3
PUMPS = 2
HOST_RETURNS_AFTER_S = 5.0
POLL_S = 1.0


@dataclass
class Host:
    """A stand-in for one machine: its processes, started with the same command and settings."""

    name: str
    command: list[str]
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)  # every process it ever ran (attempts name their pid)

    def start(self) -> None:
        process = subprocess.Popen(self.command, cwd=ROOT, env=self.env)
        self.processes.append(process)
        self.pids.add(process.pid)

    def live(self) -> list[subprocess.Popen[bytes]]:
        return [process for process in self.processes if process.poll() is None]

    def kill(self) -> None:
        for process in self.live():
            process.kill()
            process.wait()

    def stop(self) -> None:
        for process in self.live():
            process.send_signal(signal.SIGTERM)
        for process in self.live():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class RedisServer:
    """redis-server with AOF on a fixed port and directory, so that a restart finds its data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.directory), "--save", "", "--appendonly", "yes"]
        command += ["--appendfsync", "everysec", "--maxmemory-policy", "noeviction"]
        with (self.directory / "redis.log").open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        with redis.Redis.from_url(self.url) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.ping():
                        return
                except redis.RedisError:  # not listening yet, or loading its AOF
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # a clean stop: the AOF is flushed
            self.process.wait(timeout=30)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--sales", type=int, default=20000)
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for every delivery")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    with tempfile.TemporaryDirectory() as directory, sink() as sink_process:
        tmp = Path(directory)
        server = RedisServer(tmp / "redis")
        server.start()
        sink_process.configure(delay=SINK_DELAY_S)
        try:
            with fresh_database(tmp, sqlite=False, prefix="bench_cluster") as url:
                print(f"database: {describe(url)}", flush=True)
                if warning := autovacuum_warning(url):
                    print(warning, flush=True)
                database = Database(url)
                webs, workers, pumps = hosts(url, server.url, tmp)
                try:
                    network = seed(database, sink_process, args.sales)
                    report = run(args, database, server, sink_process, network, webs, workers, pumps)
                finally:
                    for host in [*webs, *workers, *pumps]:
                        host.kill()
                    database.dispose()
        finally:
            server.stop()
    for line in report:
        print(line)


def hosts(url: str, redis_url: str, tmp: Path) -> tuple[list[Host], list[Host], list[Host]]:
    def env(name: str) -> dict[str, str]:
        # The same settings everywhere (README: what must be equal on every host), a directory per host.
        return engine_env(url, redis_url, tmp / name, ACCESS_LOG="0", DISPATCHER_ENV="production")

    webs = []
    for n in range(1, WEB_HOSTS + 1):
        port = free_port()
        command = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
        webs.append(Host(f"web{n}:{port}", [*command, "app:create_app()"], env(f"web{n}")))
    workers = [
        Host(f"worker{n}", [sys.executable, "-m", "workers.worker"], env(f"worker{n}"))
        for n in range(1, WORKER_HOSTS + 1)
    ]
    pump = [sys.executable, "-m", "flask", "--app", "app", "pump"]
    pumps = [Host(f"pump{n}", pump, env(f"pump{n}")) for n in range(1, PUMPS + 1)]
    return webs, workers, pumps


def base_url(web: Host) -> str:
    return f"http://127.0.0.1:{web.name.rsplit(':', 1)[1]}"


def wait_ready(web: Host, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base_url(web)}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{web.name} did not become ready")


def run(
    args: argparse.Namespace,
    database: Database,
    server: RedisServer,
    sink_process: SinkProcess,
    network: Network,
    webs: list[Host],
    workers: list[Host],
    pumps: list[Host],
) -> list[str]:
    for host in [*webs, *workers, *pumps]:
        host.start()
    for web in webs:
        wait_ready(web)
    print(
        f"cluster: {WEB_HOSTS} web hosts, {WORKER_HOSTS} worker hosts, {PUMPS} pumps; {args.sales} sales x "
        f"{POSTBACKS} postbacks, sink answering in {SINK_DELAY_S * 1000:g} ms",
        flush=True,
    )
    accepted: list[int] = []
    stop = threading.Event()
    poster = threading.Thread(
        target=post_sales, args=([base_url(web) for web in webs], network, accepted, stop)
    )
    started = time.monotonic()
    poster.start()

    def note(text: str) -> None:
        print(f"  {time.monotonic() - started:6.1f} s: {text}", flush=True)

    kills: list[Kill] = []
    redis_gap_s: float | None = None
    steps = {"host": False, "redis": False, "web": False}
    deadline = started + args.timeout
    next_note = started + 15
    while True:
        time.sleep(POLL_S)
        done = _succeeded(database)
        if not steps["host"] and len(accepted) >= args.sales // 4:
            steps["host"] = True
            lost = workers[0]
            claimed: dict[int, int] = {}
            for process in lost.live():
                claimed.update(leased_by(database, process.pid))
            lost.kill()
            kills.append(Kill(time.time(), lost.name, claimed))
            note(f"{lost.name} lost every process (kill -9), holding {len(claimed)} deliveries")
            threading.Timer(HOST_RETURNS_AFTER_S, lost.start).start()
        if not steps["redis"] and len(accepted) >= args.sales // 2:
            steps["redis"] = True
            server.stop()
            server.start()
            restarted_at = time.monotonic()
            note("Redis restarted (AOF)")
            redis_gap_s = _until_new_delivered(database, _last_delivery(database), restarted_at)
        if not steps["web"] and len(accepted) >= args.sales * 3 // 4:
            steps["web"] = True
            for web in webs:
                web.stop()
                web.start()
                wait_ready(web)
                note(f"{web.name} restarted (rolling)")
        if time.monotonic() >= next_note:
            next_note += 15
            note(f"{len(accepted)} sales accepted, {done} deliveries succeeded")
        if not poster.is_alive() and done >= len(accepted) * POSTBACKS:
            break
        if time.monotonic() > deadline:
            stop.set()
            note("timeout: stopping")
            break
    poster.join()
    return summary(database, sink_process, accepted, kills, redis_gap_s, workers, time.monotonic() - started)


def _last_delivery(database: Database) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.max(Delivery.id))) or 0)


def _until_new_delivered(
    database: Database, after_id: int, since: float, timeout_s: float = 120
) -> float | None:
    """Seconds from `since` until a delivery made after it (a sale accepted since) has succeeded: the whole
    way (web, Redis, worker, receiver) works again."""
    while time.monotonic() - since < timeout_s:
        with database.session() as session:
            delivered = session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.id > after_id, Delivery.state == "succeeded")
            )
        if delivered:
            return time.monotonic() - since
        time.sleep(0.1)
    return None


def summary(
    database: Database,
    sink_process: SinkProcess,
    accepted: list[int],
    kills: Sequence[Kill],
    redis_gap_s: float | None,
    workers: Sequence[Host],
    elapsed: float,
) -> list[str]:
    with database.session() as session:
        states = dict(session.execute(select(Delivery.state, func.count()).group_by(Delivery.state)).all())
        by_worker = dict(session.execute(select(Attempt.worker, func.count()).group_by(Attempt.worker)).all())
    stats = sink_process.stats()
    expected = len(accepted) * POSTBACKS
    lost = expected - min(stats["unique"], states.get("succeeded", 0))
    shares: Counter[str] = Counter()
    for worker, count in by_worker.items():
        pid = int(str(worker).rsplit(":", 1)[-1]) if worker else -1
        owner = next((host.name for host in workers if pid in host.pids), "other")
        shares[owner] += count
    attempts = sum(shares.values()) or 1
    delays = resend_delays(database, kills)
    lines = [
        f"sales accepted: {len(accepted)}; deliveries: {sum(states.values())} (expected {expected}); "
        f"states: {states}",
        f"receiver saw {stats['unique']} distinct deliveries, {stats['total']} requests; "
        f"duplicates: {stats['duplicates']}",
        f"run took {elapsed:.1f} s",
        "attempts by worker host: "
        + ", ".join(f"{name} {count} ({count / attempts:.0%})" for name, count in sorted(shares.items())),
        f"lost host's claimed deliveries sent again after: {max(delays):.1f} s" if delays else "",
        f"a sale accepted after the Redis restart was delivered {redis_gap_s:.1f} s after it"
        if redis_gap_s is not None
        else "no sale accepted after the Redis restart was delivered within 120 s",
        f"cluster_duplicates: {stats['duplicates']}",
        f"cluster_lost: {lost}",
    ]
    return [line for line in lines if line]


def _succeeded(database: Database) -> int:
    with database.session() as session:
        count = session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.state == "succeeded")
        )
        return int(count or 0)


if __name__ == "__main__":
    main()
