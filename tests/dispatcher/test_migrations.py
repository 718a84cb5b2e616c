"""`db upgrade` builds exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dispatcher import delivery_details, migrate
from dispatcher.db import Database
from dispatcher.models import Advertiser, Attempt, Base, Program, Publisher, Transaction
from tests.dispatcher import factories

EXPECTED_TABLES = {
    "publishers",
    "traffic_sources",
    "advertisers",
    "programs",
    "staff_users",
    "clicks",
    "transactions",
    "transaction_events",
    "postbacks",
    "postback_traffic_sources",
    "postback_programs",
    "deliveries",
    "attempts",
    "audit_entries",
    "demo_receipts",
    "advertiser_users",
}


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """Migrations build the schema themselves: each test starts with no table at all."""
    return empty_database_url


def test_upgrade_creates_every_table_and_matches_the_models(database_url: str) -> None:
    migrate.upgrade(database_url)

    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) >= EXPECTED_TABLES
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_upgrade_is_idempotent_and_downgrade_removes_everything(database_url: str) -> None:
    migrate.upgrade(database_url)
    migrate.upgrade(database_url)

    command.downgrade(migrate.alembic_config(database_url), "base")

    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def _owner_and_shop_at_0003(session: Session) -> tuple[SimpleNamespace, SimpleNamespace]:
    now = datetime.now(UTC)
    owner = session.execute(
        insert(Publisher.__table__)
        .values(
            name="P",
            email="p@migrations.test",
            password_hash="x",
            active=True,
            session_epoch=0,
            created_at=now,
        )
        .returning(Publisher.__table__.c.id)
    ).scalar_one()
    # Through the advertiser columns 0003 has too (today's model adds the rotation's previous secrets, 0007).
    advertiser = session.execute(
        insert(Advertiser.__table__)
        .values(name="A", active=True, created_at=now)
        .returning(Advertiser.__table__.c.id)
    ).scalar_one()
    values = {
        "advertiser_id": advertiser,
        "name": "Shop",
        "landing_url": "https://shop.example/",
        "commission_type": "percent",
        "commission_value": Decimal("10"),
        "currency": "USD",
        "allow_clickless": False,
        "allow_advertiser_commission": False,
        "active": True,
        "created_at": now,
    }
    shop = session.execute(
        insert(Program.__table__).values(**values).returning(Program.__table__.c.id)
    ).scalar_one()
    return SimpleNamespace(id=owner), SimpleNamespace(id=shop)


def test_the_business_key_migration_keeps_transactions_and_their_constraints_both_ways(
    database_url: str,
) -> None:
    """0004 rebuilds the transactions table on SQLite (batch mode) and swaps its unique key on both: rows,
    CHECK constraints, foreign keys and the business key must come through, up and down."""
    migrate.upgrade(database_url, "0003")
    database = Database(database_url)
    with database.session() as session:
        # Publisher and program rows through the columns 0003 has (today's models have more, e.g. time_zone);
        # the transactions table is what this migration changes, and its model is used as it is.
        owner, shop = _owner_and_shop_at_0003(session)
        kept = factories.transaction(session, owner, shop, order_number="A-1", sale_amount=Decimal("19.99"))
        ids = (owner.id, shop.id, kept.id)
    database.dispose()

    for revision in ("head", "0003"):  # up, then back down
        if revision == "head":
            migrate.upgrade(database_url)
        else:
            command.downgrade(migrate.alembic_config(database_url), revision)
        database = Database(database_url)
        with database.session() as session:
            row = session.get_one(Transaction, ids[2])
            assert (row.order_number, row.sale_amount, row.program_id) == ("A-1", Decimal("19.99"), ids[1])
        refused = {
            "the same program, order and event": {"order_number": "A-1"},
            "a negative amount (CHECK)": {"sale_amount": Decimal("-1.00")},
            "an unknown program (foreign key)": {"program_id": 987654},
        }
        for case, fields in refused.items():
            with pytest.raises(IntegrityError), database.session() as session:
                owner, shop = SimpleNamespace(id=ids[0]), SimpleNamespace(id=ids[1])
                factories.transaction(session, owner, shop, **fields)  # type: ignore[arg-type]
                pytest.fail(f"{case} was accepted after {revision}")
        with database.session() as session:  # and an ordinary new order is still taken
            owner, shop = SimpleNamespace(id=ids[0]), SimpleNamespace(id=ids[1])
            factories.transaction(session, owner, shop, order_number=f"B-{revision}")  # type: ignore[arg-type]
        database.dispose()


def test_the_retention_migration_keeps_each_deliverys_last_request_in_its_attempts_both_ways(
    database_url: str,
) -> None:
    """0010 drops the delivery's copy of its last request (the last attempt holds it) and, on PostgreSQL,
    compares host names byte by byte; downgrade copies the last attempt back."""
    migrate.upgrade(database_url, "0009")
    database = Database(database_url)
    with database.session() as session:
        owner, shop = factories.publisher(session), factories.program(session)
        hook = factories.postback(session, owner)
        sale = factories.transaction(session, owner, shop)
        sent = factories.delivery(session, hook, factories.event(session, sale), destination_host="t.example")
        for number in (1, 2):
            session.add(
                Attempt(delivery_id=sent.id, number=number, method="POST", url=f"https://t.example/{number}")
            )
        session.flush()
        session.execute(
            text("UPDATE deliveries SET method = 'POST', url = 'https://t.example/2', body = NULL")
        )
        delivery_id = sent.id
    database.dispose()

    migrate.upgrade(database_url)
    engine = create_engine(database_url)
    with engine.connect() as connection:
        columns = {column["name"]: column for column in inspect(connection).get_columns("deliveries")}
        assert not {"method", "url", "body"} & set(columns)
        if connection.dialect.name == "postgresql":
            assert columns["destination_host"]["type"].collation == "C"
        with Session(connection) as session:
            last = delivery_details.last_requests(session, [delivery_id])
    assert last == {delivery_id: delivery_details.LastRequest("POST", "https://t.example/2", None)}

    command.downgrade(migrate.alembic_config(database_url), "0009")
    with engine.connect() as connection:
        row = connection.execute(text("SELECT method, url, body FROM deliveries")).one()
    engine.dispose()
    assert tuple(row) == ("POST", "https://t.example/2", None)
