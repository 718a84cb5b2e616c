"""Support search at scale: 200,000 deliveries on PostgreSQL, a filtered search timed against a seq scan.

    python -m bench.search

Seeds a fresh schema of the PostgreSQL database named by `BENCH_DATABASE_URL` (or `BENCH_POSTGRES_URL`, its
older name), else `TEST_POSTGRES_URL`, else postgresql+psycopg://postgres@127.0.0.1:5432/test, with
`BENCH_DELIVERIES` (200,000) deliveries, each with its transaction, event and click, through multi-row
`INSERT ... SELECT generate_series` (a few seconds), then ANALYZE. The schema is dropped at the end.

The timed query is the console's own (`dispatcher.support.search.search`): one page of failed deliveries of
one publisher in the last 7 days, newest first. Its plan (EXPLAIN ANALYZE) is printed, then the median of
`BENCH_ROUNDS` runs, and in the same run the same query with index scans disabled (the baseline a missing
index would give). A few other filters are timed too. The last line is `search_ms: <median>`.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from bench._database import analyze_schema, postgres_url
from dispatcher.models import Base
from dispatcher.support import search

DELIVERIES = int(os.environ.get("BENCH_DELIVERIES", "200000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
PUBLISHERS, ADVERTISERS, PROGRAMS, POSTBACKS = 200, 20, 100, 400
SPACING_S = 10  # one delivery every 10 s: 200,000 cover about 23 days
NO_INDEX = ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan")


def seed(connection: Connection, count: int, now: datetime) -> None:
    """Parties, then `count` clicks, transactions, events and deliveries (ids 1..count, one of each per i).

    Delivery i belongs to postback i % 400 + 1 (publisher postback % 200 + 1), program i*7 % 100 + 1; one
    block of 400 ids in 10 failed (404, 500 or timeout), one pending, the rest succeeded; `SPACING_S` apart.
    """
    params = {"n": count, "now": now, "spacing": SPACING_S}
    for statement in SEED_SQL:
        connection.execute(text(statement), params)
    analyze_schema(connection)


_T = "(:now - make_interval(secs => (:n - i) * :spacing))"  # row i's creation time
# The outcome follows the block of 400 ids, not i itself, so that every publisher has every outcome.
_K = f"(i / {POSTBACKS})"
SEED_SQL = [
    f"""INSERT INTO publishers (id, name, email, password_hash, active, created_at)
        SELECT i, 'Publisher ' || i, 'pub' || i || '@bench.test', 'x', true, :now
        FROM generate_series(1, {PUBLISHERS}) i""",
    f"""INSERT INTO advertisers (id, name, active, created_at)
        SELECT i, 'Advertiser ' || i, true, :now FROM generate_series(1, {ADVERTISERS}) i""",
    f"""INSERT INTO programs (id, advertiser_id, name, landing_url, commission_type, commission_value,
            currency, allow_clickless, allow_advertiser_commission, active, created_at)
        SELECT i, i % {ADVERTISERS} + 1, 'Program ' || i, 'https://shop.example/', 'percent', 10, 'USD',
            false, false, true, :now
        FROM generate_series(1, {PROGRAMS}) i""",
    f"""INSERT INTO postbacks (id, publisher_id, name, url_template, method, headers, events, statuses,
            status_map, active, created_at, updated_at)
        SELECT i, i % {PUBLISHERS} + 1, 'Postback ' || i, 'https://h' || i || '.example/pb?cid=#fobs#', 'GET',
            '{{}}', '["sale"]', '["pending"]', '{{}}', true, :now, :now
        FROM generate_series(1, {POSTBACKS}) i""",
    f"""INSERT INTO clicks (id, click_id, program_id, publisher_id, fobs, created_at)
        SELECT i, 'click' || i, (i * 7) % {PROGRAMS} + 1, ((i % {POSTBACKS}) + 1) % {PUBLISHERS} + 1,
            'sub' || i, {_T}
        FROM generate_series(1, :n) i""",
    f"""INSERT INTO transactions (id, sales_id, program_id, click_pk, publisher_id, order_number, sale_amount,
            commission, currency, event_type, status, channel, event_time, created_at, updated_at)
        SELECT i, 'sale' || i, (i * 7) % {PROGRAMS} + 1, i, ((i % {POSTBACKS}) + 1) % {PUBLISHERS} + 1,
            'ORD-' || i, 100, 10, 'USD', 'sale', 'pending', 'api', {_T}, {_T}, {_T}
        FROM generate_series(1, :n) i""",
    f"""INSERT INTO transaction_events (id, transaction_id, kind, status, sale_amount, commission, channel,
            occurred_at, created_at)
        SELECT i, i, 'created', 'pending', 100, 10, 'api', {_T}, {_T}
        FROM generate_series(1, :n) i""",
    f"""INSERT INTO deliveries (id, postback_id, transaction_event_id, transaction_id, publisher_id, state,
            attempt_count, replayed_after_attempts, destination_host, last_status_code, last_error_class,
            created_at, updated_at, completed_at, next_attempt_at)
        SELECT i, i % {POSTBACKS} + 1, i, i, ((i % {POSTBACKS}) + 1) % {PUBLISHERS} + 1,
            CASE {_K} % 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'pending' ELSE 'succeeded' END,
            CASE {_K} % 10 WHEN 1 THEN 0 ELSE 1 END, 0,
            'h' || (i % {POSTBACKS} + 1) || '.example',
            CASE WHEN {_K} % 10 = 1 THEN NULL WHEN {_K} % 10 <> 0 THEN 200 WHEN {_K} % 30 = 0 THEN NULL
                 WHEN {_K} % 20 = 0 THEN 500 ELSE 404 END,
            CASE WHEN {_K} % 10 <> 0 THEN NULL WHEN {_K} % 30 = 0 THEN 'timeout' ELSE 'http_status' END,
            {_T}, {_T}, CASE {_K} % 10 WHEN 1 THEN NULL ELSE {_T} + interval '1 second' END,
            CASE {_K} % 10 WHEN 1 THEN {_T} ELSE NULL END
        FROM generate_series(1, :n) i""",
]


def _time_ms(run: Callable[[], Any], rounds: int) -> tuple[float, int]:
    run()  # warm the cache, as a console in use would be
    samples, rows = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        rows = len(run())
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), rows


def _page(session: Session, filters: search.Filters) -> Callable[[], list[search.Row]]:
    return lambda: search.search(session, filters).rows


def _explain(session: Session, filters: search.Filters) -> str:
    query = search.query_for(session, filters).limit(search.PAGE_SIZE + 1)
    dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    compiled = query.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    rows = session.execute(text(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {compiled}"))
    return "\n".join(row[0] for row in rows)


def main() -> None:
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("BENCH_POSTGRES_URL") or postgres_url()
    schema = f"bench_search_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(base, connect_args={"options": f"-csearch_path={schema}"})
    # The baseline's own connections start with index scans off (a SET on a shared connection would not
    # reach plans psycopg has already prepared).
    off = " ".join(f"-c{setting}=off" for setting in NO_INDEX)
    baseline = create_engine(base, connect_args={"options": f"-csearch_path={schema} {off}"})
    try:
        run(engine, baseline)
    finally:
        engine.dispose()
        baseline.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run(engine: Any, baseline: Any) -> None:
    now = datetime.now(UTC)
    Base.metadata.create_all(engine)
    started = time.perf_counter()
    with engine.begin() as connection:
        seed(connection, DELIVERIES, now)
    took = time.perf_counter() - started
    print(f"seeded: {DELIVERIES} deliveries (+ transactions, events, clicks) in {took:.1f} s")

    # The support question: "publisher 7's failed postbacks this week".
    main_filters = search.Filters(publisher_id=7, state="failed", created_from=now - timedelta(days=7))
    others = {
        "order number": search.Filters(order_number=f"ORD-{DELIVERIES // 2}"),
        "sales id": search.Filters(sales_id=f"sale{DELIVERIES // 3}"),
        "sub id": search.Filters(sub_id=f"sub{DELIVERIES // 4}"),
        "host + status 404": search.Filters(destination_host="h17.example", status_code=404),
        "advertiser + failed": search.Filters(advertiser_id=3, state="failed"),
        "no filter, page 1": search.Filters(),
    }
    with Session(engine) as session:
        print("plan (EXPLAIN ANALYZE) of the timed search:")
        print(_explain(session, main_filters))
        indexed_ms, rows = _time_ms(_page(session, main_filters), ROUNDS)
        for name, filters in others.items():
            ms, found = _time_ms(_page(session, filters), ROUNDS)
            print(f"other filter {name}: {ms:.2f} ms ({found} rows)")
    with Session(baseline) as session:
        scans = [line.strip() for line in _explain(session, main_filters).splitlines() if "Scan on" in line]
        print("baseline plan reads: " + "; ".join(scans))
        seq_ms, seq_rows = _time_ms(_page(session, main_filters), max(3, ROUNDS // 3))
    assert rows == seq_rows, f"index and seq scan disagree: {rows} vs {seq_rows} rows"
    print(f"search_ms_seqscan_baseline: {seq_ms:.2f} (same query, index scans disabled, {seq_rows} rows)")
    print(f"speedup: {seq_ms / indexed_ms:.1f}x")
    print(f"search_ms: {indexed_ms:.2f}")


if __name__ == "__main__":
    main()
