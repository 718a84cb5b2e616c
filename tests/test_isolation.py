"""The suite's own isolation: each test starts with every table and no row, in its own database."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, inspect, select

from dispatcher.db import Database
from dispatcher.models import Base, Publisher
from tests.conftest import PostgresTables
from tests.dispatcher import factories


def test_a_test_starts_with_every_table_and_no_row(database: Database) -> None:
    with database.engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) >= set(Base.metadata.tables)
        counts = {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in Base.metadata.sorted_tables
        }
    assert set(counts.values()) == {0}, counts


@pytest.mark.postgres
def test_emptying_postgres_deletes_every_tables_rows_and_starts_ids_again(
    postgres_tables: PostgresTables, postgres_url: str
) -> None:
    database = Database(postgres_url)
    own = Table("own_rows", MetaData(), Column("id", Integer, primary_key=True), Column("note", String(10)))
    own.create(database.engine, checkfirst=True)
    with database.session() as session:
        first = factories.publisher(session)
        factories.transaction(session, first, factories.program(session))
        second = factories.publisher(session)
        session.execute(own.insert().values(note="mine"))
    assert second.id > first.id >= 1

    postgres_tables.emptied()

    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(own)) == 0
        assert session.scalar(select(func.count()).select_from(Publisher)) == 0
        assert factories.publisher(session).id == 1
    database.dispose()
