"""Concurrent status changes of one pending sale: exactly one wins, the others are told its new status."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatcher.db import Database
from dispatcher.ledger import Changed, StatusChange, StatusConflict, change_status
from dispatcher.models import Base, Transaction, TransactionEvent
from tests.dispatcher import factories

DECIDERS = 20


def test_twenty_concurrent_approvals_and_declines_leave_one_change(database_url: str) -> None:
    database = Database(database_url, pool_size=DECIDERS, max_overflow=0)
    Base.metadata.create_all(database.engine)
    with database.session() as session:
        owner, shop = factories.publisher(session), factories.program(session)
        sale = factories.transaction(session, owner, shop)
        factories.event(session, sale)
        sales_id, advertiser_id = sale.sales_id, shop.advertiser_id
    start = threading.Barrier(DECIDERS)

    def decide(n: int) -> Changed | StatusConflict:
        target = "approved" if n % 2 else "declined"
        with Session(database.engine, expire_on_commit=False) as session:
            start.wait()
            try:
                return change_status(session, advertiser_id, sales_id, StatusChange(status=target), "api")
            except StatusConflict as conflict:
                return conflict

    with ThreadPoolExecutor(DECIDERS) as pool:
        outcomes = list(pool.map(decide, range(DECIDERS)))

    [winner] = [outcome for outcome in outcomes if isinstance(outcome, Changed)]
    conflicts = [outcome for outcome in outcomes if isinstance(outcome, StatusConflict)]
    assert len(conflicts) == DECIDERS - 1
    assert {conflict.current_status for conflict in conflicts} == {winner.status}
    with database.session() as session:
        assert session.scalars(select(Transaction.status)).one() == winner.status
        assert session.scalar(select(func.count()).select_from(TransactionEvent)) == 2
    database.dispose()
