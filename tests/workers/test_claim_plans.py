"""On PostgreSQL a claim reads the deliveries it is given by primary key, whatever the planner believes of
the table.

Here, as in each bench.delivery run and on a new installation, the table is new, holds a backlog and was
never analyzed: a claim that judged its rows in the query reading them then read every pending delivery
through an index on the state (50,000 pending: 9.5 ms of the database's time for a claim of 50). A schema of
its own: in the test process's shared one, what earlier tests left in the planner's statistics changed the
plan (once the primary key index was read whole: 20,050 rows for a claim of 50).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert

from dispatcher.db import Database
from dispatcher.driver_sql import sql_and_values
from dispatcher.models import Base, Delivery, Transaction, TransactionEvent
from tests.dispatcher import factories
from workers import claims

pytestmark = pytest.mark.postgres

# Large enough that reading 50 rows by primary key is, to the planner, cheaper than reading the table.
BACKLOG = 20_000


@pytest.fixture
def backlog(empty_postgres_url: str) -> Iterator[tuple[Database, list[int]]]:
    """BACKLOG pending deliveries, each of its own sale, to a few postbacks (written as the ledger writes
    them, many rows a statement), in a table never analyzed."""
    database = Database(empty_postgres_url)
    Base.metadata.create_all(database.engine)
    with database.session() as session:
        owner, shop = factories.publisher(session), factories.program(session)
        hooks = [factories.postback(session, owner).id for _ in range(20)]
        sales = session.scalars(
            insert(Transaction).returning(Transaction.id, sort_by_parameter_order=True),
            [_sale(owner.id, shop.id, n) for n in range(BACKLOG)],
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
    yield database, list(ids)
    database.dispose()


_MONEY = {"sale_amount": Decimal("100.00"), "commission": Decimal("10.00")}


def _sale(publisher_id: int, program_id: int, n: int) -> dict[str, Any]:
    ids = {"sales_id": f"S{n}", "order_number": f"order-{n}", "program_id": program_id}
    return ids | _MONEY | {"publisher_id": publisher_id, "currency": "USD", "event_time": datetime.now(UTC)}


def _plan(database: Database, ids: list[int]) -> tuple[int, list[dict[str, Any]]]:
    """How many the claim took, and every node of its plan (EXPLAIN ANALYZE, rolled back)."""
    now = datetime.now(UTC)
    statement = claims._claim_statement(postgres=True, top_up=False, resting=False)
    params: dict[str, Any] = {
        "ids": ids,
        "now": now,
        "lease_until": now + timedelta(seconds=30),
        "token": "t",
    }
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

    taken, nodes = _plan(database, ids[-50:])

    assert taken == 50
    # The 50 asked for, by primary key (to lock them, then to update them), and at most one row more each to
    # look up its turn: not the 20,000 pending.
    assert sum(_read(nodes).values()) <= 3 * 50


def _read(nodes: list[dict[str, Any]]) -> dict[str, int]:
    """Rows read from each index, and by scanning each table, kept or filtered out, over all loops."""
    read: dict[str, int] = {}
    for node in nodes:
        source = node.get("Index Name") or (node["Node Type"] == "Seq Scan" and node["Relation Name"])
        if source:
            rows = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
            read[source] = read.get(source, 0) + rows * node["Actual Loops"]
    return read
