"""Retention measured: bytes per delivery kept in PostgreSQL after `prune` at its defaults, and what a prune
of 1,000,000 old deliveries costs the intake running beside it.

    python -m bench.retention

PostgreSQL only (its sizes are what is measured): a fresh schema of the database named by
`BENCH_DATABASE_URL`, else `TEST_POSTGRES_URL`, else postgresql+psycopg://postgres@127.0.0.1:5432/test,
dropped at the end. It starts its own Redis (sales are handed to RQ after commit, as in production).

Seeded with SQL (`generate_series`), each delivery with its transaction, event and attempts as the engine
writes them (the expanded URL on each attempt, the `User-Agent` header, the receiver's
answer headers and excerpt, the worker's name):

- `BENCH_OLD` (1,000,000) old deliveries, completed 91 to 180 days ago, succeeded (one attempt), which
  `prune` deletes, but for as many failed for good (8 attempts, kept forever) as the recent traffic fails
  in 89 days (1% of `BENCH_KEPT`): the old ones stand for a busier past, not for more failures;
- `BENCH_KEPT` (100,000) deliveries of the last 89 days, which `prune` keeps: 95% succeeded at the first
  attempt, 3% at the second, 1% failed for good after 8, 1% pending after 3; the attempts older than 30 days
  have their excerpts and answer headers cleared by `prune`.

Then, with the app's own intake (`POST /api/v1/transactions` through the WSGI app in this process, one sale
every `BENCH_INTAKE_INTERVAL_MS`, 20 ms) it times sales for `BENCH_BASELINE_S` (5) seconds alone, then while
`flask --app app prune` (a process of its own, defaults: excerpts after 30 days, succeeded after 90, batches
of 1,000 ids each in its own transaction) runs; those sales are deleted again before the sizes are taken
(pending, never sent: not what a kept delivery looks like). It prints the prune's time and rate, the sales'
latency percentiles alone and during the prune, and the sizes (`pg_total_relation_size`: heap, TOAST and
indexes) of the tables a delivery lives in, `deliveries` and `attempts` (the outbox is the deliveries table;
there is no other), before, right after the prune and a plain VACUUM (the freed space is reused by new rows,
not given back to the file system), and compacted (VACUUM FULL: the size at steady state), with each index
and the average row of each table, which say what takes the space. The last line is
`bytes_per_delivery: <n>`, the compacted size of both tables over the deliveries they hold (goal: at most
1,024).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text

from bench._database import analyze_schema, describe, fresh_database, sqlite_wanted

OLD = int(os.environ.get("BENCH_OLD", "1000000"))
KEPT = int(os.environ.get("BENCH_KEPT", "100000"))
INTERVAL_S = float(os.environ.get("BENCH_INTAKE_INTERVAL_MS", "20")) / 1000
BASELINE_S = float(os.environ.get("BENCH_BASELINE_S", "5"))
GOAL_BYTES = 1024
ROOT = Path(__file__).resolve().parent.parent
TABLES = ("deliveries", "attempts")
PUBLISHERS, PROGRAMS, POSTBACKS = 200, 100, 400
FIRST_PARTY_ID = 1001  # below: the network seeded through the app's code for the intake
USER_AGENT = "PostbackDispatcher/0.1 (+https://github.com/postback-dispatcher)"


def main(argv: Sequence[str] | None = None) -> None:
    if sqlite_wanted("python -m bench.retention", __doc__, argv):
        sys.exit("bench.retention measures PostgreSQL's sizes: run it without --sqlite / BENCH_SQLITE")
    from dispatcher.redis_server import EmbeddedRedis

    with (
        tempfile.TemporaryDirectory(prefix="bench-retention-") as scratch,
        fresh_database(Path(scratch), sqlite=False, prefix="bench_retention") as database_url,
    ):
        redis_server = EmbeddedRedis(Path(scratch) / "redis", persist=False)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_server.start(),
            "SECRET_KEY": "bench-secret-key-long-enough",
            "INSTANCE_PATH": str(Path(scratch) / "instance"),
            "ACCESS_LOG": "0",
        }
        try:
            run(env, database_url)
        finally:
            redis_server.stop()


def run(env: Mapping[str, str], database_url: str) -> None:
    from app import create_app
    from bench._network import seed_network
    from dispatcher.db import get_db
    from dispatcher.models import Base

    load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    print(f"database: {describe(database_url)}; {load}")
    app = create_app({key: env[key] for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "INSTANCE_PATH")})
    database = get_db(app)
    Base.metadata.create_all(database.engine)
    with database.session() as session:
        network = seed_network(session, "Retention", "https://tracker.example/pb?cid=#fobs#&sa=#sa#")
    engine = create_engine(database_url)
    try:
        started = time.perf_counter()
        with engine.begin() as connection:
            seed(connection, OLD, KEPT, datetime.now(UTC))
        print(
            f"seeded: {OLD} old and {KEPT} recent deliveries with their attempts, transactions and events "
            f"in {time.perf_counter() - started:.0f} s"
        )
        before = sizes(engine)
        report("before prune", before)

        sale = Sale(app, network.api_key, network.click_id)
        alone = sale.paced(lambda: time.perf_counter() - sale.started > BASELINE_S)
        pruned, prune_s, during = prune_beside_intake(env, sale)
        print(f"prune: {json.dumps(pruned, sort_keys=True)}")
        deleted = int(pruned["deliveries_deleted"])
        batches = -(-deleted // 1000)
        print(
            f"prune: {deleted} deliveries deleted and {pruned['attempts_cleared']} excerpts cleared in "
            f"{prune_s:.1f} s ({deleted / prune_s:.0f} deliveries/s; {batches} delete batches, "
            f"{1000 * prune_s / max(1, batches):.0f} ms each on average, clearing included)"
        )
        print(f"intake alone:         {latencies(alone)}")
        print(f"intake during prune:  {latencies(during)}")
        print(f"load average now: {os.getloadavg()[0]:.1f}")

        with engine.begin() as connection:
            # The bench's own sales: pending, never sent, not what a kept delivery looks like.
            connection.execute(
                text("DELETE FROM deliveries WHERE id > :last"), {"last": FIRST_PARTY_ID + OLD + KEPT}
            )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM (ANALYZE) deliveries, attempts"))
        report("after prune + VACUUM (file sizes; the space is reused by new rows)", sizes(engine))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM (FULL, ANALYZE) deliveries, attempts"))
        compacted = sizes(engine)
        report("compacted (VACUUM FULL: steady state)", compacted)
        explain_space(engine)
        per_delivery = compacted.total / compacted.deliveries
        verdict = "within" if per_delivery <= GOAL_BYTES else "over"
        print(f"goal: at most {GOAL_BYTES} bytes per delivery: {verdict}")
        print(f"bytes_per_delivery: {per_delivery:.0f}")
    finally:
        engine.dispose()
        database.dispose()


class Sale:
    """The app's intake, called through its WSGI app (fast path, access log and all) in this process."""

    def __init__(self, app: Any, api_key: str, click_id: str) -> None:
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.click_id = click_id
        self.number = 0
        self.started = time.perf_counter()

    def one(self) -> float:
        self.number += 1
        body = {"click_id": self.click_id, "order_number": f"R-{self.number}", "sale_amount": "49.90"}
        started = time.perf_counter()
        response = self.client.post("/api/v1/transactions", json=body, headers=self.headers)
        took = time.perf_counter() - started
        if response.status_code != 201:
            raise RuntimeError(
                f"sale {self.number}: {response.status_code} {response.get_data(as_text=True)}"
            )
        return took

    def paced(self, done: Any) -> list[float]:
        """One sale every INTERVAL_S until `done()`; each one's seconds."""
        self.started = time.perf_counter()
        taken: list[float] = []
        due = self.started
        while not done():
            taken.append(self.one())
            due += INTERVAL_S
            time.sleep(max(0.0, due - time.perf_counter()))
        return taken


def prune_beside_intake(env: Mapping[str, str], sale: Sale) -> tuple[dict[str, Any], float, list[float]]:
    """`flask --app app prune` as its own process while the sales go on; its answer, its time, the sales'."""
    command = [sys.executable, "-m", "flask", "--app", "app", "prune"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=dict(env), stdout=subprocess.PIPE, text=True)
    outcome: dict[str, Any] = {}

    def wait() -> None:
        stdout, _ = process.communicate()
        outcome["took"] = time.perf_counter() - started
        outcome["answer"] = stdout

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        during = sale.paced(lambda: not waiter.is_alive())
    finally:
        waiter.join()
    if process.returncode != 0:
        raise RuntimeError(f"prune exited {process.returncode}: {outcome['answer']}")
    return json.loads(outcome["answer"]), float(outcome["took"]), during


def latencies(seconds: list[float]) -> str:
    ms = sorted(1000 * s for s in seconds)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    points = f"p50 {cuts[49]:.1f} ms, p95 {cuts[94]:.1f} ms, p99 {cuts[98]:.1f} ms"
    return f"{len(ms)} sales, {points}, max {ms[-1]:.1f} ms"


@dataclass(frozen=True)
class Sizes:
    deliveries: int
    attempts: int
    relations: dict[str, dict[str, int]]  # table: heap, toast, indexes, total

    @property
    def total(self) -> int:
        return sum(parts["total"] for parts in self.relations.values())


def sizes(engine: Engine) -> Sizes:
    with engine.connect() as connection:
        relations = {}
        for table in TABLES:
            row = connection.execute(
                text(
                    "SELECT pg_relation_size(c.oid),"
                    " coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),"
                    " pg_indexes_size(c.oid), pg_total_relation_size(c.oid)"
                    " FROM pg_class c WHERE c.oid = CAST(:t AS regclass)"
                ),
                {"t": table},
            ).one()
            relations[table] = dict(zip(("heap", "toast", "indexes", "total"), map(int, row), strict=True))
        deliveries = int(connection.scalar(text("SELECT count(*) FROM deliveries")) or 0)
        attempts = int(connection.scalar(text("SELECT count(*) FROM attempts")) or 0)
    return Sizes(deliveries, attempts, relations)


def report(title: str, found: Sizes) -> None:
    print(
        f"{title}: {found.deliveries} deliveries, {found.attempts} attempts "
        f"({found.attempts / max(1, found.deliveries):.2f} per delivery)"
    )
    for table, parts in found.relations.items():
        print(
            f"  {table}: {_mib(parts['total'])} = heap {_mib(parts['heap'])} + TOAST {_mib(parts['toast'])} "
            f"+ indexes {_mib(parts['indexes'])}; "
            f"{parts['total'] / max(1, found.deliveries):.0f} bytes per delivery"
        )
    print(f"  both: {found.total / max(1, found.deliveries):.0f} bytes per delivery")


def explain_space(engine: Engine) -> None:
    """Each index's share, and the average row of each table (with and without the answer's excerpt)."""
    with engine.connect() as connection:
        count = int(connection.scalar(text("SELECT count(*) FROM deliveries")) or 1)
        indexes = connection.execute(
            text(
                "SELECT c.relname, ci.relname, pg_relation_size(i.indexrelid)"
                " FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
                " JOIN pg_class ci ON ci.oid = i.indexrelid"
                " WHERE i.indrelid IN (CAST('deliveries' AS regclass), CAST('attempts' AS regclass))"
                " ORDER BY 3 DESC"
            )
        ).all()
        print("indexes, largest first (bytes per delivery):")
        for table, index, size in indexes:
            print(f"  {table}.{index}: {int(size) / count:.0f}")
        rows = {
            "delivery row (its URL is its attempts')": "SELECT avg(pg_column_size(d.*)), 0 FROM deliveries d",
            "attempt row with its answer": "SELECT avg(pg_column_size(a.*)), avg(pg_column_size(a.url))"
            " FROM attempts a WHERE a.response_excerpt IS NOT NULL",
            "attempt row, answer cleared": "SELECT avg(pg_column_size(a.*)), avg(pg_column_size(a.url))"
            " FROM attempts a WHERE a.response_excerpt IS NULL",
        }
        print("average row (bytes, pg_column_size: its tuple header included, not its 4-byte line pointer):")
        for name, query in rows.items():
            whole, url = connection.execute(text(query)).one()
            if whole is not None:
                print(f"  {name}: {float(whole):.0f}, of which the expanded URL {float(url or 0):.0f}")


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def seed(connection: Connection, old: int, kept: int, now: datetime) -> None:
    """Parties, then `old + kept` transactions, events, deliveries (ids i, one of each) and their attempts."""
    params = {
        "old": old,
        "old_failed_every": max(1, round(100 * old / max(1, kept))),
        "n": old + kept,
        "now": now,
        "old_step": 89 * 86400 / max(1, old),
        "kept_step": 89 * 86400 / max(1, kept),
        "first": FIRST_PARTY_ID,
    }
    for statement in SEED_SQL:
        connection.execute(text(statement), params)
    for table in (
        "publishers",
        "advertisers",
        "programs",
        "postbacks",
        "transactions",
        "transaction_events",
        "deliveries",
        "attempts",
    ):
        connection.execute(
            text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        )
    analyze_schema(connection)


# Row i's creation time: old ones 91 to 180 days ago, kept ones within the last 89 days.
_T = (
    "(CASE WHEN i <= :old THEN :now - interval '91 days' - make_interval(secs => (:old - i) * :old_step)"
    " ELSE :now - make_interval(secs => (:n - i) * :kept_step) END)"
)
# Kept ones by i % 100: 0 failed for good, 1 pending, 2-4 succeeded at the second attempt, else at the first.
_FAILED = "(CASE WHEN i <= :old THEN i % :old_failed_every = 0 ELSE i % 100 = 0 END)"
_KIND = (
    f"(CASE WHEN {_FAILED} THEN 'failed' WHEN i > :old AND i % 100 = 1 THEN 'pending' ELSE 'succeeded' END)"
)
_TRIES = (
    f"(CASE WHEN {_FAILED} THEN 8 WHEN i > :old AND i % 100 = 1 THEN 3"
    " WHEN i > :old AND i % 100 < 5 THEN 2 ELSE 1 END)"
)
_PUB = f"(:first + (i % {POSTBACKS}) % {PUBLISHERS})"


# Delivery i's expanded URL, which only its attempts keep (the delivery's own copy went in migration 0010).
def _url_of(i: str) -> str:
    return (
        f"'https://tracker' || ({i} % {POSTBACKS}) || '.example/postback?clickid='"
        f" || substr(md5({i}::text), 1, 22)"
        f" || '&sub1=sub' || {i} || '&order=ORD-' || {i} || '&amount=49.90&payout=4.99&status=approved'"
    )


_URL_OF_D = _url_of("(d.id - :first)")
SEED_SQL = [
    f"""INSERT INTO publishers (id, name, email, password_hash, active, created_at)
        SELECT :first + i, 'Publisher ' || i, 'pub' || i || '@bench.test', 'x', true, :now
        FROM generate_series(0, {PUBLISHERS - 1}) i""",
    """INSERT INTO advertisers (id, name, active, created_at) VALUES (:first, 'Advertiser', true, :now)""",
    f"""INSERT INTO programs (id, advertiser_id, name, landing_url, commission_type, commission_value,
            currency, allow_clickless, allow_advertiser_commission, active, created_at)
        SELECT :first + i, :first, 'Program ' || i, 'https://shop.example/', 'percent', 10, 'USD', false,
            false, true, :now
        FROM generate_series(0, {PROGRAMS - 1}) i""",
    f"""INSERT INTO postbacks (id, publisher_id, name, url_template, method, headers, events, statuses,
            status_map, active, created_at, updated_at)
        SELECT :first + i, :first + i % {PUBLISHERS}, 'Postback ' || i,
            'https://tracker' || i || '.example/postback?clickid=#fobs#&order=#on#', 'GET', '{{}}',
            '["sale"]', '["approved"]', '{{}}', true, :now, :now
        FROM generate_series(0, {POSTBACKS - 1}) i""",
    f"""INSERT INTO transactions (id, sales_id, program_id, publisher_id, order_number, sale_amount,
            commission, currency, event_type, status, channel, event_time, created_at, updated_at)
        SELECT :first + i, substr(md5('s' || i), 1, 16), :first + i % {PROGRAMS}, {_PUB}, 'ORD-' || i, 49.90,
            4.99, 'USD', 'sale', 'approved', 'api', {_T}, {_T}, {_T}
        FROM generate_series(1, :n) i""",
    f"""INSERT INTO transaction_events (id, transaction_id, kind, status, sale_amount, commission, channel,
            occurred_at, created_at)
        SELECT :first + i, :first + i, 'created', 'approved', 49.90, 4.99, 'api', {_T}, {_T}
        FROM generate_series(1, :n) i""",
    f"""INSERT INTO deliveries (id, postback_id, transaction_event_id, transaction_id, publisher_id, state,
            attempt_count, replayed_after_attempts, destination_host, last_status_code,
            last_error_class, last_error, created_at, updated_at, completed_at, next_attempt_at, queued_at)
        SELECT :first + i, :first + i % {POSTBACKS}, :first + i, :first + i, {_PUB}, {_KIND}, {_TRIES}, 0,
            'tracker' || (i % {POSTBACKS}) || '.example',
            CASE {_KIND} WHEN 'succeeded' THEN 200 ELSE 500 END,
            CASE {_KIND} WHEN 'succeeded' THEN NULL ELSE 'http_status' END,
            CASE {_KIND} WHEN 'succeeded' THEN NULL ELSE 'HTTP 500 Internal Server Error' END,
            {_T}, {_T} + make_interval(secs => {_TRIES}),
            CASE {_KIND} WHEN 'pending' THEN NULL ELSE {_T} + make_interval(secs => {_TRIES}) END,
            CASE {_KIND} WHEN 'pending' THEN :now + interval '1 hour' ELSE NULL END, NULL
        FROM generate_series(1, :n) i""",
    f"""INSERT INTO attempts (delivery_id, number, outcome, started_at, duration_ms, method, url,
            request_headers, resolved_ip, status_code, response_headers, response_excerpt, error_class,
            error_message, worker)
        SELECT d.id, k,
            CASE WHEN k < d.attempt_count OR d.state = 'pending' THEN 'retry'
                 WHEN d.state = 'failed' THEN 'failed' ELSE 'succeeded' END,
            d.created_at + make_interval(secs => k - 1), 40 + (d.id * 7 + k) % 900, 'GET', {_URL_OF_D},
            '{{"User-Agent": "{USER_AGENT}"}}', '203.0.113.' || (d.id % 250),
            CASE WHEN k = d.attempt_count AND d.state = 'succeeded' THEN 200 ELSE 500 END,
            '{{"Content-Type": "text/html; charset=UTF-8", "Content-Length": "2", "Server": "nginx",'
            ' "Date": "Thu, 03 Dec 2026 12:00:00 GMT"}}',
            CASE WHEN k = d.attempt_count AND d.state = 'succeeded' THEN 'OK'
                 ELSE '<html><head><title>500 Internal Server Error</title></head><body><center>'
                      '<h1>500 Internal Server Error</h1></center><hr><center>nginx</center></body></html>'
            END,
            CASE WHEN k = d.attempt_count AND d.state = 'succeeded' THEN NULL ELSE 'http_status' END,
            CASE WHEN k = d.attempt_count AND d.state = 'succeeded' THEN NULL ELSE 'HTTP 500' END,
            'worker-7.example:4242'
        FROM deliveries d CROSS JOIN LATERAL generate_series(1, d.attempt_count) k
        WHERE d.id >= :first""",
]


if __name__ == "__main__":
    main()
