"""On PostgreSQL a job reads the deliveries it is given by primary key, whatever the planner believes of
the tables.

Here, as in each bench.delivery run and on a new installation, the tables are new, hold a backlog and were
never analyzed: a claim that judged its rows in the query reading them then read every pending delivery
through an index on the state (50,000 pending: 9.5 ms of the database's time for a claim of 50). On a smaller
backlog, with the server's default random_page_cost, the planner read whole tables for a job's claim and load;
the worker's sessions plan with a lower one (`workers.planner_costs`). A schema of its own for each backlog:
in the test process's shared one, what earlier tests left in the planner's statistics changed the plan (once
the primary key index was read whole: 20,050 rows for a claim of 50).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Executable, insert, make_url, text

from dispatcher.db import Database
from dispatcher.driver_sql import sql_and_values
from dispatcher.models import Base, Delivery, Transaction, TransactionEvent
from dispatcher.queueing import BATCH_SIZE
from tests.dispatcher import factories
from workers import claims, loading, planner_costs

pytestmark = pytest.mark.postgres

JOB = BATCH_SIZE  # a job's deliveries, as the ledger and the pump hand them over
# Large enough that reading a job's rows by primary key is, to the planner, cheaper than reading the table.
BACKLOG = 20_000
# Small enough that, with those, the planner reads whole tables (a job's load, all three: 30,000 rows).
SMALL_BACKLOG = 10_000


@pytest.fixture
def backlog(empty_postgres_url: str) -> Iterator[tuple[Database, list[int]]]:
    """BACKLOG pending deliveries, with the server's planner settings."""
    database = Database(empty_postgres_url)
    yield database, _pending(database, BACKLOG)
    database.dispose()


@pytest.fixture
def worker_backlog(empty_postgres_url: str) -> Iterator[tuple[Database, list[int]]]:
    """SMALL_BACKLOG pending deliveries, read through sessions set up as a worker's."""
    database = planner_costs.worker_database(empty_postgres_url)
    yield database, _pending(database, SMALL_BACKLOG)
    database.dispose()


def _pending(database: Database, count: int) -> list[int]:
    """`count` pending deliveries, each of its own sale, to a few postbacks (written as the ledger writes
    them, many rows a statement), in tables never analyzed."""
    Base.metadata.create_all(database.engine)
    with database.engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            # Kept never analyzed: 10,000 rows are past autovacuum's threshold. What did analyze them mid-test
            # (whole tables then read by a job's load, in 3 full runs) was the bare ANALYZE of a bench run by
            # another test (bench.search's seed, bench.retention), which reached every schema of the database;
            # the benches now analyze their own tables only (`bench._database.analyze_schema`).
            connection.execute(text(f'ALTER TABLE "{table.name}" SET (autovacuum_enabled = false)'))
    with database.session() as session:
        owner, shop = factories.publisher(session), factories.program(session)
        hooks = [factories.postback(session, owner).id for _ in range(20)]
        sales = session.scalars(
            insert(Transaction).returning(Transaction.id, sort_by_parameter_order=True),
            [_sale(owner.id, shop.id, n) for n in range(count)],
        ).all()
        event = {"kind": "created", "status": "pending", "channel": "api", "occurred_at": datetime.now(UTC)}
        events = session.scalars(
            insert(TransactionEvent).returning(TransactionEvent.id, sort_by_parameter_order=True),
            [{"transaction_id": sale} | event | _MONEY for sale in sales],
        ).all()
        ids = session.scalars(
            insert(Delivery).returning(Delivery.id, sort_by_parameter_order=True),
            [
                {"postback_id": hooks[n % len(hooks)], "transaction_event_id": event, "transaction_id": sale}
                | {"publisher_id": owner.id}
                for n, (sale, event) in enumerate(zip(sales, events, strict=True))
            ],
        ).all()
    return list(ids)


_MONEY = {"sale_amount": Decimal("100.00"), "commission": Decimal("10.00")}


def _sale(publisher_id: int, program_id: int, n: int) -> dict[str, Any]:
    ids = {"sales_id": f"S{n}", "order_number": f"order-{n}", "program_id": program_id}
    return ids | _MONEY | {"publisher_id": publisher_id, "currency": "USD", "event_time": datetime.now(UTC)}


def _plan(
    database: Database, ids: list[int], resting: list[int] | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """A claim of `ids` explained (see `_explained`); `resting`: the postbacks whose deliveries it leaves."""
    now = datetime.now(UTC)
    statement = claims._claim_statement(postgres=True, top_up=False, resting=resting is not None)
    params: dict[str, Any] = {
        "ids": ids,
        "now": now,
        "lease_until": now + timedelta(seconds=30),
        "token": "t",
    }
    if resting is not None:
        params["resting"] = resting
    return _explained(database, statement, params)


def _explained(
    database: Database, statement: Executable, params: dict[str, Any]
) -> tuple[int, list[dict[str, Any]]]:
    """The rows `statement` returned, and every node of its plan (EXPLAIN ANALYZE, rolled back)."""
    sql, values = sql_and_values(statement, database.engine.dialect, params)
    connection = database.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, values)
        explained = cursor.fetchone()
        assert explained is not None
        plan = explained[0][0]["Plan"]
    finally:
        connection.rollback()
        connection.close()
    nodes, walking = [], [plan]
    while walking:
        node = walking.pop()
        nodes.append(node)
        walking.extend(node.get("Plans", []))
    return plan["Actual Rows"], nodes


def test_a_claim_reads_its_deliveries_by_primary_key_however_many_are_pending(
    backlog: tuple[Database, list[int]],
) -> None:
    database, ids = backlog

    taken, nodes = _plan(database, ids[-JOB:])

    assert taken == JOB
    # The job's ids, by primary key (to lock them, then to update them), and at most one row more each to
    # look up its turn: not the 20,000 pending.
    assert sum(_read(nodes).values()) <= 3 * JOB


def test_a_claim_neither_takes_nor_locks_the_deliveries_of_resting_postbacks(
    backlog: tuple[Database, list[int]],
) -> None:
    database, ids = backlog
    with database.session() as session:
        hook_of = dict(session.query(Delivery.id, Delivery.postback_id).filter(Delivery.id.in_(ids[-JOB:])))
    resting = sorted(set(hook_of.values()))[:4]  # 4 of the 20 postbacks
    left = sum(hook in resting for hook in hook_of.values())

    taken, nodes = _plan(database, ids[-JOB:], resting)

    assert 0 < left < JOB and taken == JOB - left
    # Locked only to be left, a hanging receiver's deliveries were written (a row lock) in every job that
    # carried them.
    assert [node["Actual Rows"] for node in nodes if node["Node Type"] == "LockRows"] == [taken]


def test_a_workers_job_reads_its_deliveries_by_primary_key_from_a_small_table_too(
    worker_backlog: tuple[Database, list[int]],
) -> None:
    database, ids = worker_backlog
    asked = ids[len(ids) // 2 : len(ids) // 2 + JOB]

    taken, claim_nodes = _plan(database, asked)
    loaded, load_nodes = _explained(database, loading._ROWS, {"ids": asked})

    assert taken == loaded == JOB
    assert sum(_read(claim_nodes).values()) <= 3 * JOB
    # Each delivery, its event, its transaction, program and click: one row of each, not the 30,000 of the
    # three tables read whole.
    assert sum(_read(load_nodes).values()) <= 5 * JOB


def test_a_workers_sessions_keep_page_costs_chosen_for_the_server(empty_postgres_url: str) -> None:
    url = make_url(empty_postgres_url)  # its options name the test's schema: the settings are added to them

    def chosen(setting: str) -> str:
        options = f"{url.query.get('options', '')} -c{setting}".strip()
        return url.update_query_dict({"options": options}).render_as_string(hide_password=False)

    assert _page_costs(empty_postgres_url) == ("1.1", "1")
    assert _page_costs(chosen("random_page_cost=3")) == ("3", "1")
    assert _page_costs(chosen("seq_page_cost=2")) == ("4", "2")  # the ratio chosen stays


def _page_costs(url: str) -> tuple[str, str]:
    """random_page_cost and seq_page_cost in a worker's session, once the pool has rolled back the
    transaction its first checkout left (a setting made in it and not committed would be gone)."""
    database = planner_costs.worker_database(url)
    try:
        backends = set()
        for _ in range(2):
            with database.connect() as connection:
                backends.add(connection.scalar(text("SELECT pg_backend_pid()")))
                costs = (
                    str(connection.scalar(text("SHOW random_page_cost"))),
                    str(connection.scalar(text("SHOW seq_page_cost"))),
                )
        assert len(backends) == 1  # both checkouts had the same connection
        return costs
    finally:
        database.dispose()


def _read(nodes: list[dict[str, Any]]) -> dict[str, int]:
    """Rows read from each index, and by scanning each table, kept or filtered out, over all loops."""
    read: dict[str, int] = {}
    for node in nodes:
        source = node.get("Index Name") or (node["Node Type"] == "Seq Scan" and node["Relation Name"])
        if source:
            rows = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
            read[source] = read.get(source, 0) + rows * node["Actual Loops"]
    return read
