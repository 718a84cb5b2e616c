"""`db upgrade` builds exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from dispatcher import migrate
from dispatcher.models import Base

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
}


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
