"""On PostgreSQL with 20,000 seeded deliveries (`bench.search.seed`), every search filter has an index that
answers it: with sequential scans priced out (`enable_seqscan = off`, so a plan still shows one only where no
index can serve), the plan reads the filter's index, never a whole table of deliveries, transactions or
clicks. Which plan the planner prefers at 200,000 rows, and how fast it is, is `python -m bench.search`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.search import seed
from dispatcher.models import Base
from dispatcher.support import search
from tests.conftest import postgres_schema

pytestmark = pytest.mark.postgres
ROWS = 20_000
NOW = datetime.now(UTC)
BIG_TABLES = ("deliveries", "transactions", "clicks")


@pytest.fixture(scope="module")
def seeded() -> Iterator[Session]:
    with postgres_schema("plan") as url:
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        with engine.begin() as connection:
            seed(connection, ROWS, NOW)
        with Session(engine) as session:
            session.execute(text("SET enable_seqscan = off"))
            yield session
        engine.dispose()


FILTERS = {
    "sales id": (search.Filters(sales_id="sale777"), "uq_transactions_sales_id"),
    "order number": (
        search.Filters(order_number="ORD-777"),
        "uq_transactions_order_number_program_id_event_type",
    ),
    "click id": (search.Filters(click_id="click777"), "uq_clicks_click_id"),
    "sub id": (search.Filters(sub_id="sub777"), "ix_clicks_fobs"),
    "publisher, failed, last week": (
        search.Filters(publisher_id=7, state="failed", created_from=NOW - timedelta(days=7)),
        "ix_deliveries_publisher_id_created_at",
    ),
    "postback": (search.Filters(postback_id=17), "ix_deliveries_postback_id"),
    "destination host": (search.Filters(destination_host="h17.example"), "ix_deliveries_destination_host"),
    "destination host and port": (
        search.Filters(destination_host="h17.example:8443"),
        "ix_deliveries_destination_host",
    ),
    # A frequent value may be found faster walking the newest rows; a rare one reads its own index.
    "error class, frequent": (search.Filters(error_class="timeout"), "ix_deliveries_"),
    "error class, rare": (search.Filters(error_class="dns"), "ix_deliveries_last_error_class_created_at"),
    "status code": (search.Filters(status_code=500), "ix_deliveries_last_status_code_created_at"),
    "state": (search.Filters(state="pending"), "ix_deliveries_"),
    "program": (search.Filters(program_id=3), "ix_transactions_program_id_created_at"),
    # 5% of all deliveries: the newest rows, probed by key, find a page soonest.
    "advertiser": (search.Filters(advertiser_id=3), "ix_deliveries_created_at"),
    "date range": (
        search.Filters(created_from=NOW - timedelta(hours=5), created_to=NOW - timedelta(hours=4)),
        "ix_deliveries_created_at",
    ),
    "no filter": (search.Filters(), "ix_deliveries_created_at"),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_each_filter_is_answered_by_an_index(seeded: Session, name: str) -> None:
    filters, index = FILTERS[name]
    query = search.query_for(seeded, filters).limit(search.PAGE_SIZE + 1)
    compiled = query.compile(seeded.get_bind(), compile_kwargs={"literal_binds": True})

    plan = "\n".join(row[0] for row in seeded.execute(text(f"EXPLAIN {compiled}")))

    assert not [table for table in BIG_TABLES if f"Seq Scan on {table}" in plan], plan
    assert index in plan, plan


def test_the_next_page_is_answered_by_the_same_index(seeded: Session) -> None:
    filters = search.Filters(publisher_id=7, before_id=ROWS - 5_000)
    query = search.query_for(seeded, filters).limit(search.PAGE_SIZE + 1)
    compiled = query.compile(seeded.get_bind(), compile_kwargs={"literal_binds": True})

    plan = "\n".join(row[0] for row in seeded.execute(text(f"EXPLAIN {compiled}")))

    assert "ix_deliveries_publisher_id_created_at" in plan and "Seq Scan on deliveries" not in plan, plan
