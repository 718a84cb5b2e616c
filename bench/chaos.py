"""Chaos: sales through the HTTP API while workers are killed, Redis is flushed and the web app restarts.

    python -m bench.chaos [--sales 5000] [--sqlite]

Runs its own Redis, a gunicorn web app, 2 worker processes, a pump and a sink answering in 50 ms (so that
deliveries are in flight when a worker dies). Every few seconds one worker gets `kill -9` and a new one is
started; Redis gets one FLUSHALL; the web app is restarted once while sales are being posted (posters retry:
a sale reported twice is a duplicate, not a second postback). At the end every delivery must be succeeded and
the sink must have seen every delivery id at least once. Prints lost and duplicate counts, the time from each
kill to the killed worker's claimed deliveries being sent again, and last `chaos_lost: <n>`.

Database: PostgreSQL, a fresh schema (dropped after) of the database named by `BENCH_DATABASE_URL`, else
`TEST_POSTGRES_URL`, else postgresql+psycopg://postgres@127.0.0.1:5432/test; a SQLite file with `--sqlite` or
`BENCH_SQLITE=1` (see `bench._database`).
"""

from __future__ import annotations

import argparse
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis
import requests
from sqlalchemy import func, insert, select

from bench._database import add_sqlite_flag, describe, exit_on_sigterm, fresh_database, wants_sqlite
from bench.delivery import ROOT, SinkProcess, engine_env, sink
from dispatcher import accounts
from dispatcher.db import Database
from dispatcher.ledger.ids import new_click_id
from dispatcher.models import Attempt, Base, Click, Delivery, Postback
from dispatcher.redis_server import EmbeddedRedis, free_port

KILL_EVERY_S = 5.0
POSTERS = 4
SINK_DELAY_S = 0.05
POSTBACKS = 2  # two publisher hosts per sale, so every sale fans out


@dataclass
class Network:
    api_key: str
    click_ids: list[str]


@dataclass
class Kill:
    at: float  # wall clock
    worker: str
    claimed: dict[int, int]  # delivery id -> attempt number it held


@dataclass
class Chaos:
    """The moving parts, started and stopped here."""

    env: dict[str, str]
    web_port: int
    web: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pump: subprocess.Popen[bytes] | None = None

    def start_web(self) -> None:
        command = [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "4"]
        command += ["--bind", f"127.0.0.1:{self.web_port}", "--log-level", "warning", "app:create_app()"]
        self.web = subprocess.Popen(command, cwd=ROOT, env=self.env)

    def restart_web(self) -> None:
        assert self.web is not None
        self.web.send_signal(signal.SIGTERM)
        self.web.wait()
        self.start_web()

    def start_worker(self) -> subprocess.Popen[bytes]:
        worker = subprocess.Popen([sys.executable, "-m", "workers.worker"], cwd=ROOT, env=self.env)
        self.workers.append(worker)
        return worker

    def start_pump(self) -> None:
        self.pump = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "pump"], cwd=ROOT, env=self.env
        )

    def stop_all(self) -> None:
        for process in [self.web, self.pump, *self.workers]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def seed(database: Database, sink_process: SinkProcess, sales: int) -> Network:
    Base.metadata.create_all(database.engine)
    with database.session() as session:
        publisher = accounts.create_publisher(
            session, "Chaos Media", "chaos@example.test", "chaos-password"
        ).publisher
        source = accounts.create_traffic_source(session, publisher.id, "Site")
        advertiser = accounts.create_advertiser(session, "Chaos Shop")
        program = accounts.create_program(
            session, advertiser.advertiser.id, "Chaos", landing_url="https://shop.example/", commission="10%"
        )
        for port in sink_process.ports[:POSTBACKS]:
            url = f"http://127.0.0.1:{port}/pb?d=#deliveryid#&cid=#fobs#&amount=#sa#&n=#attempt#"
            session.add(Postback(publisher_id=publisher.id, url_template=url))
        click_ids = [new_click_id() for _ in range(sales)]
        session.execute(
            insert(Click),
            [
                {
                    "click_id": click_id,
                    "program_id": program.id,
                    "publisher_id": publisher.id,
                    "traffic_source_id": source.id,
                    "fobs": f"trk{n}",
                    "created_at": datetime.now(UTC),
                }
                for n, click_id in enumerate(click_ids)
            ],
        )
        return Network(advertiser.api_key, click_ids)


def post_sales(
    base_urls: Sequence[str], network: Network, accepted: list[int], stop: threading.Event
) -> None:
    """POSTERS threads; each sale is posted until it gets a 2xx (a web app may be restarting). With several
    web hosts, as a load balancer would: each sale to the next host in turn, the next one after a failure."""
    lock = threading.Lock()
    todo = list(enumerate(network.click_ids))

    def poster() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {network.api_key}"
        while not stop.is_set():
            with lock:
                if not todo:
                    return
                n, click_id = todo.pop()
            body = {"click_id": click_id, "order_number": f"order-{n}", "sale_amount": "49.90"}
            turn = n
            while not stop.is_set():
                base_url = base_urls[turn % len(base_urls)]
                turn += 1
                try:
                    response = session.post(f"{base_url}/api/v1/transactions", json=body, timeout=10)
                except requests.RequestException:
                    time.sleep(0.2 / len(base_urls))
                    continue
                if response.status_code in (200, 201):
                    with lock:
                        accepted.append(n)
                    break
                if response.status_code < 500:
                    raise RuntimeError(f"sale {n} refused: {response.status_code} {response.text}")
                time.sleep(0.2)

    threads = [threading.Thread(target=poster) for _ in range(POSTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def leased_by(database: Database, pid: int) -> dict[int, int]:
    """Deliveries the worker with this pid holds a lease on, with the attempt number it is making."""
    with database.session() as session:
        rows = session.execute(
            select(Delivery.id, Delivery.attempt_count).where(
                Delivery.leased_by.like(f"%:{pid}/%"), Delivery.state == "pending"
            )
        ).all()
    return {row.id: row.attempt_count for row in rows}


def resend_delays(database: Database, kills: Sequence[Kill]) -> list[float]:
    """For each kill with deliveries in flight: seconds until the last of them was sent again."""
    delays = []
    with database.session() as session:
        for kill in kills:
            if not kill.claimed:
                continue
            latest = 0.0
            for delivery_id, number in kill.claimed.items():
                again = session.scalar(
                    select(func.min(Attempt.started_at)).where(
                        Attempt.delivery_id == delivery_id, Attempt.number > number
                    )
                )
                if again is not None:
                    latest = max(latest, again.timestamp() - kill.at)
            delays.append(latest)
    return delays


def wait_for_web(base_url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if requests.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the web app did not start")
        time.sleep(0.2)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--sales", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for every delivery")
    add_sqlite_flag(parser)
    args = parser.parse_args(argv)
    sqlite = wants_sqlite(args.sqlite)
    exit_on_sigterm()
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as directory, sink() as sink_process:
        tmp = Path(directory)
        server = EmbeddedRedis(tmp / "redis", persist=False)
        redis_url = server.start()
        sink_process.configure(delay=SINK_DELAY_S)
        try:
            with fresh_database(tmp, sqlite=sqlite, prefix="bench_chaos") as url:
                print(f"database: {describe(url)}", flush=True)
                database = Database(url)
                # gunicorn reads the repository's gunicorn.conf.py: no access line for each sale.
                chaos = Chaos(engine_env(url, redis_url, tmp, ACCESS_LOG="0"), free_port())
                base_url = f"http://127.0.0.1:{chaos.web_port}"
                try:
                    network = seed(database, sink_process, args.sales)
                    report = run(args, rng, chaos, database, base_url, redis_url, sink_process, network)
                finally:
                    chaos.stop_all()
                    database.dispose()
        finally:
            server.stop()
    for line in report:
        print(line)


def run(
    args: argparse.Namespace,
    rng: random.Random,
    chaos: Chaos,
    database: Database,
    base_url: str,
    redis_url: str,
    sink_process: SinkProcess,
    network: Network,
) -> list[str]:
    chaos.start_web()
    chaos.start_pump()
    for _ in range(2):
        chaos.start_worker()
    wait_for_web(base_url)
    print(
        f"chaos: {args.sales} sales x {POSTBACKS} postbacks, sink answering in {SINK_DELAY_S * 1000:g} ms",
        flush=True,
    )
    accepted: list[int] = []
    stop = threading.Event()
    poster = threading.Thread(target=post_sales, args=([base_url], network, accepted, stop))
    started = time.monotonic()
    poster.start()
    kills: list[Kill] = []
    flushed = restarted = False
    deadline = started + args.timeout
    while True:
        time.sleep(KILL_EVERY_S)
        done = _succeeded(database)
        if not flushed and len(accepted) >= args.sales // 3:
            redis.Redis.from_url(redis_url).flushall()
            flushed = True
            print(
                f"  {time.monotonic() - started:5.1f} s: FLUSHALL (Redis loses every queued job)", flush=True
            )
        if not restarted and len(accepted) >= args.sales // 2:
            chaos.restart_web()
            restarted = True
            print(f"  {time.monotonic() - started:5.1f} s: web app restarted", flush=True)
        if poster.is_alive() or done < args.sales * POSTBACKS * 0.9:
            victim = rng.choice([w for w in chaos.workers if w.poll() is None])
            claimed = leased_by(database, victim.pid)
            victim.kill()
            kills.append(Kill(time.time(), str(victim.pid), claimed))
            victim.wait()
            chaos.start_worker()
            print(
                f"  {time.monotonic() - started:5.1f} s: kill -9 worker {victim.pid} holding {len(claimed)} "
                f"deliveries; {len(accepted)} sales accepted, {done} deliveries succeeded",
                flush=True,
            )
        if not poster.is_alive() and done >= len(accepted) * POSTBACKS:
            break
        if time.monotonic() > deadline:
            stop.set()
            print("  timeout: stopping", flush=True)
            break
    poster.join()
    elapsed = time.monotonic() - started
    return summary(database, sink_process, accepted, kills, elapsed, flushed and restarted)


def summary(
    database: Database,
    sink_process: SinkProcess,
    accepted: list[int],
    kills: Sequence[Kill],
    elapsed: float,
    all_chaos_happened: bool,
) -> list[str]:
    with database.session() as session:
        rows = session.execute(select(Delivery.state, func.count()).group_by(Delivery.state)).all()
        states: dict[str, int] = {state: count for state, count in rows}
        deliveries = sum(states.values())
    stats = sink_process.stats()
    expected = len(accepted) * POSTBACKS
    # Lost: a delivery the receiver never saw, or one that did not end succeeded.
    lost = expected - min(stats["unique"], states.get("succeeded", 0))
    delays = resend_delays(database, kills)
    lines = [
        f"sales accepted: {len(accepted)}; deliveries: {deliveries} (expected {expected}); states: {states}",
        f"receiver saw {stats['unique']} distinct deliveries, {stats['total']} requests; "
        f"duplicates: {stats['duplicates']} (at-least-once: a killed worker's in-flight sends are repeated)",
        f"worker kills: {len(kills)}; FLUSHALL and web restart done: {all_chaos_happened}; "
        f"run took {elapsed:.1f} s",
    ]
    if delays:
        lines.append(
            f"kill -> claimed deliveries sent again: max {max(delays):.1f} s, "
            f"median {statistics.median(delays):.1f} s over {len(delays)} kills (goal < 30 s)"
        )
    lines.append(f"chaos_duplicates: {stats['duplicates']}")
    lines.append(f"chaos_lost: {lost}")
    return lines


def _succeeded(database: Database) -> int:
    with database.session() as session:
        return int(
            session.scalar(select(func.count()).select_from(Delivery).where(Delivery.state == "succeeded"))
            or 0
        )


if __name__ == "__main__":
    main()
