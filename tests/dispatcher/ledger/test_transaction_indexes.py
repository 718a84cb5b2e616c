"""Transactions' indexes: every reported sale writes each of them, so none may be redundant, and the business
key's unique index (led by order_number) answers look-ups by order number on SQLite (PostgreSQL's plans are
checked in tests/support/test_search_plan.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect
from sqlalchemy.orm import Session

from dispatcher.ledger.intake import _RECORDED, _RECORDED_ONE
from dispatcher.models import Base, Transaction
from dispatcher.support import search

WRITTEN_PER_SALE = ("transactions", "transaction_events", "deliveries")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _plan(session: Session, statement: Any) -> list[str]:
    compiled = statement.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
    rows = session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
    return [row[-1] for row in rows]


def _index_leading_with_order_number(plan: list[str], session: Session) -> bool:
    """Whether the plan searches transactions through an index whose first column is order_number."""
    for step in plan:
        if not step.startswith("SEARCH transactions USING") or " INDEX " not in step:
            continue
        name = step.split(" INDEX ", 1)[1].split(" ", 1)[0]
        columns = session.connection().exec_driver_sql(f"PRAGMA index_info('{name}')").all()
        if columns and sorted(columns)[0][2] == "order_number":
            return True
    return False


def test_no_index_a_sale_writes_is_a_leading_part_of_another(engine: Engine) -> None:
    """A shorter index whose columns start a longer one answers nothing the longer cannot, and costs every
    reported sale a write (a page of SQLite's WAL). A partial index holds only some rows, so it stands in for
    no full index however its columns start."""
    inspector = inspect(engine)
    for table in WRITTEN_PER_SALE:
        indexes = inspector.get_indexes(table)
        keys = [tuple(index["column_names"]) for index in indexes]
        keys += [tuple(unique["column_names"]) for unique in inspector.get_unique_constraints(table)]
        full = [
            tuple(index["column_names"])
            for index in indexes
            if "sqlite_where" not in index["dialect_options"]
        ]
        full += [tuple(unique["column_names"]) for unique in inspector.get_unique_constraints(table)]
        for shorter in keys:
            for longer in full:
                if longer != shorter and longer[: len(shorter)] == shorter:
                    pytest.fail(f"{table}: index {shorter} is the start of {longer}")


def test_the_business_key_leads_with_the_order_number(engine: Engine) -> None:
    uniques = inspect(engine).get_unique_constraints("transactions")

    assert sorted(tuple(unique["column_names"]) for unique in uniques) == [
        ("order_number", "program_id", "event_type"),
        ("sales_id",),
    ]


def test_support_search_by_order_number_uses_the_business_key(engine: Engine) -> None:
    with Session(engine) as session:
        query = search.query_for(session, search.Filters(order_number="ORD-7")).limit(search.PAGE_SIZE + 1)
        plan = _plan(session, query)

        assert _index_leading_with_order_number(plan, session), plan


@pytest.mark.parametrize("keys", [1, 3], ids=["one report", "a batch"])
def test_looking_up_earlier_reports_uses_the_business_key(engine: Engine, keys: int) -> None:
    with Session(engine) as session:
        if keys == 1:
            statement = _RECORDED_ONE.params(program_id=1, order_number="A-1", event_type="sale")
        else:  # as `existing` builds it for a batch
            statement = _RECORDED.where(
                Transaction.order_number.in_([f"A-{n}" for n in range(keys)]),
                Transaction.program_id.in_([1, 2]),
            )
        plan = _plan(session, statement)

        assert _index_leading_with_order_number(plan, session), plan
        assert not any(step.startswith("SCAN transactions") for step in plan), plan
