"""The database itself protects the business: these run on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from dispatcher.db import Database
from dispatcher.models import Attempt, Click, Delivery, Postback, Program, Transaction, TransactionEvent
from tests.dispatcher import factories


def _violates(database: Database, build: Callable[[Session], Any]) -> None:
    """`build` must be refused by the database (not by Python), and nothing of it is left behind."""
    with pytest.raises(IntegrityError), database.session() as session:
        build(session)
        session.flush()


def test_the_same_order_and_event_of_a_program_is_refused_by_the_database(database: Database) -> None:
    with database.session() as session:
        owner, shop = factories.publisher(session), factories.program(session)
        factories.transaction(session, owner, shop, order_number="A-1", event_type="sale")
        ids = owner.id, shop.id

    def duplicate(session: Session) -> None:
        # A raw INSERT: the constraint is in the schema, not only in the ORM.
        session.execute(
            insert(Transaction).values(
                sales_id="other",
                program_id=ids[1],
                publisher_id=ids[0],
                order_number="A-1",
                event_type="sale",
                status="pending",
                channel="api",
                sale_amount=Decimal("1"),
                commission=Decimal("0"),
                currency="USD",
                event_time=datetime.now(UTC),
                created_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
        )

    _violates(database, duplicate)
    with database.session() as session:
        assert session.scalar(select(Transaction.id).where(Transaction.order_number == "A-1")) is not None
        assert len(session.scalars(select(Transaction)).all()) == 1


def test_the_same_order_as_a_lead_and_as_a_sale_are_two_transactions(database: Database) -> None:
    with database.session() as session:
        owner, shop = factories.publisher(session), factories.program(session)
        factories.transaction(session, owner, shop, order_number="A-1", event_type="sale")
        factories.transaction(session, owner, shop, order_number="A-1", event_type="lead")
        factories.transaction(
            session, owner, factories.program(session), order_number="A-1", event_type="sale"
        )

    with database.session() as session:
        assert len(session.scalars(select(Transaction)).all()) == 3


def test_one_delivery_per_postback_and_transaction_event(database: Database) -> None:
    with database.session() as session:
        owner, shop = factories.publisher(session), factories.program(session)
        happened = factories.event(session, factories.transaction(session, owner, shop))
        hook = factories.postback(session, owner)
        factories.delivery(session, hook, happened)
        hook_id, event_id = hook.id, happened.id

    def again(session: Session) -> None:
        hook, happened = (
            session.get_one(Postback, hook_id),
            session.get_one(TransactionEvent, event_id),
        )
        factories.delivery(session, hook, happened)

    _violates(database, again)


def test_attempt_numbers_are_unique_per_delivery(database: Database) -> None:
    with database.session() as session:
        owner, shop = factories.publisher(session), factories.program(session)
        happened = factories.event(session, factories.transaction(session, owner, shop))
        sent = factories.delivery(session, factories.postback(session, owner), happened)
        session.add(Attempt(delivery_id=sent.id, number=1, method="GET", url="https://t.example/"))
        delivery_id = sent.id

    _violates(
        database,
        lambda session: session.add(Attempt(delivery_id=delivery_id, number=1, method="GET", url="x")),
    )


@pytest.mark.parametrize(
    ("table", "values"),
    [
        ("transactions", {"status": "paid"}),
        ("transactions", {"event_type": "click"}),
        ("transactions", {"sale_amount": Decimal("-1.00")}),
        ("transactions", {"commission": Decimal("-0.01")}),
        ("programs", {"commission_type": "bonus"}),
        ("programs", {"commission_type": "percent", "commission_value": Decimal("101")}),
        ("deliveries", {"state": "lost"}),
    ],
)
def test_check_constraints_refuse_values_outside_the_business(
    database: Database, table: str, values: dict[str, Any]
) -> None:
    def build(session: Session) -> None:
        owner, shop = factories.publisher(session), factories.program(session)
        if table == "programs":
            factories.program(session, **values)
        elif table == "transactions":
            factories.transaction(session, owner, shop, **values)
        else:
            happened = factories.event(session, factories.transaction(session, owner, shop))
            factories.delivery(session, factories.postback(session, owner), happened, **values)

    _violates(database, build)
    with database.session() as session:
        assert session.scalars(select(Program)).all() == []


@pytest.mark.parametrize(
    "orphan",
    [
        lambda: Click(click_id="x", publisher_id=9999, program_id=9999),
        lambda: TransactionEvent(
            transaction_id=9999,
            kind="created",
            status="pending",
            sale_amount=Decimal(0),
            commission=Decimal(0),
            channel="api",
            occurred_at=datetime.now(UTC),
        ),
        lambda: Delivery(postback_id=9999, transaction_event_id=9999, transaction_id=9999, publisher_id=9999),
    ],
)
def test_foreign_keys_are_enforced(database: Database, orphan: Callable[[], Any]) -> None:
    _violates(database, lambda session: session.add(orphan()))


@pytest.mark.parametrize("column", ["order_number", "currency", "event_time", "sales_id"])
def test_required_transaction_fields_are_not_null(database: Database, column: str) -> None:
    _violates(
        database,
        lambda session: factories.transaction(
            session, factories.publisher(session), factories.program(session), **{column: None}
        ),
    )


def test_money_round_trips_as_exact_decimal(database: Database) -> None:
    amounts = [Decimal("0.1"), Decimal("1234567890.1234"), Decimal("19.99"), Decimal("0.005")]
    with database.session() as session:
        owner, shop = factories.publisher(session), factories.program(session)
        ids = [factories.transaction(session, owner, shop, sale_amount=amount).id for amount in amounts]

    with database.session() as session:
        loaded = [session.get_one(Transaction, pk).sale_amount for pk in ids]
    assert all(isinstance(amount, Decimal) for amount in loaded)
    assert [amount.normalize() for amount in loaded] == [amount.normalize() for amount in amounts]


@pytest.mark.parametrize("bad", [19.99, "19.99", Decimal("1.00001"), Decimal("NaN")])
def test_money_refuses_floats_strings_and_excess_precision(database: Database, bad: object) -> None:
    with pytest.raises((StatementError, TypeError, ValueError)), database.session() as session:
        factories.transaction(
            session, factories.publisher(session), factories.program(session), sale_amount=bad
        )


def test_times_are_stored_in_utc_and_read_back_aware(database: Database) -> None:
    paris = timezone(timedelta(hours=1))
    with database.session() as session:
        sale = factories.transaction(
            session,
            factories.publisher(session),
            factories.program(session),
            event_time=datetime(2026, 11, 1, 13, 30, tzinfo=paris),
        )
        pk = sale.id

    with database.session() as session:
        loaded = session.get_one(Transaction, pk)
    assert loaded.event_time == datetime(2026, 11, 1, 12, 30, tzinfo=UTC)
    assert loaded.event_time.utcoffset() == timedelta(0)
    assert loaded.created_at.tzinfo is not None


def test_naive_times_are_refused(database: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"), database.session() as session:
        factories.transaction(
            session, factories.publisher(session), factories.program(session), event_time=datetime(2026, 1, 1)
        )


def test_sqlite_runs_with_foreign_keys_on_and_wal(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    with database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    database.dispose()


@pytest.mark.parametrize("percent", ["0", "9.5", "99", "100"])
def test_percent_commissions_up_to_100_are_accepted(database: Database, percent: str) -> None:
    # Money is text on SQLite; the checks compare numbers, not strings ("99" > "100" as text).
    with database.session() as session:
        factories.program(session, commission_type="percent", commission_value=Decimal(percent))
        factories.transaction(
            session, factories.publisher(session), factories.program(session), sale_amount=Decimal("9.99")
        )
