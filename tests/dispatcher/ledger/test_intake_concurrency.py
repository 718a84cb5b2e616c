"""Fifty identical reports at the same moment make exactly one transaction: the unique constraint decides."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from dispatcher.db import Database
from dispatcher.driver_sql import DriverConnection
from dispatcher.ledger import Recorded, SaleReport, record_sales
from dispatcher.models import Base, Delivery, Transaction, TransactionEvent
from tests.dispatcher import factories

REPORTERS = 50


@contextmanager
def _session(database: Database) -> Iterator[Session]:
    with Session(database.engine, expire_on_commit=False) as session:
        yield session


@contextmanager
def _writer(database: Database) -> Iterator[Connection]:
    with database.connect(writes=True) as connection:
        yield connection


@contextmanager
def _driver(database: Database) -> Iterator[DriverConnection]:
    with database.driver(writes=True) as driver:
        yield driver


# The API and S2S record one report on the driver connection, begun as a writer; CSV batches go through a
# session; a Core connection is the third kind the ledger takes.
@pytest.mark.parametrize("connect", [_session, _writer, _driver], ids=["session", "connection", "driver"])
def test_fifty_concurrent_identical_reports_make_one_transaction_and_one_delivery(
    database_url: str, connect: Any
) -> None:
    database = Database(database_url, pool_size=REPORTERS, max_overflow=0)
    Base.metadata.create_all(database.engine)
    with database.session() as session:
        owner, shop = factories.publisher(session), factories.program(session)
        click_id = factories.click(session, owner, shop).click_id
        factories.postback(session, owner)
        advertiser_id = shop.advertiser_id
    report = SaleReport(click_id=click_id, order_number="RACE-1", sale_amount="10.00")
    start = threading.Barrier(REPORTERS)

    def reporter(_: int) -> Recorded:
        db: Session | Connection | DriverConnection
        with connect(database) as db:
            start.wait()
            [outcome] = record_sales(db, advertiser_id, [report], "api")
            assert isinstance(outcome, Recorded), outcome
            return outcome

    with ThreadPoolExecutor(REPORTERS) as pool:
        outcomes = list(pool.map(reporter, range(REPORTERS)))

    assert sum(not outcome.duplicate for outcome in outcomes) == 1
    assert len({outcome.sales_id for outcome in outcomes}) == 1
    assert {outcome.deliveries for outcome in outcomes} == {1}
    assert sum(len(outcome.new_delivery_ids) for outcome in outcomes) == 1
    with database.session() as session:
        counts = [
            session.scalar(select(func.count()).select_from(t)) for t in (Transaction, TransactionEvent)
        ]
        assert counts == [1, 1]
        assert session.scalar(select(func.count()).select_from(Delivery)) == 1
    database.dispose()
