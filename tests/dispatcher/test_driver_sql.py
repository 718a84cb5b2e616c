"""The hot paths' driver connection: Core statements run as text on the driver, with the columns' types."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, exc, select

from dispatcher import db as db_module
from dispatcher.db import Database
from dispatcher.driver_sql import DriverConnection
from dispatcher.ledger import tables
from dispatcher.ledger.rows import inserted_ids
from tests.dispatcher import factories
from tests.dispatcher.test_db import backend_of, drop_its_server_connection

_PROGRAM = select(
    tables.programs.c.id,
    tables.programs.c.commission_value,
    tables.programs.c.active,
    tables.programs.c.created_at,
).where(tables.programs.c.id == bindparam("program_id"))


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def program_id(database: Database) -> int:
    with database.session() as session:
        return factories.program(session, commission_value=Decimal("7.125")).id


def test_rows_come_back_in_the_columns_python_types(database: Database, program_id: int) -> None:
    with database.driver() as driver:
        [row] = driver.rows(_PROGRAM, {"program_id": program_id})
        again = driver.rows(_PROGRAM, {"program_id": program_id})  # the row maker worked out once

    assert row.id == program_id and row.active is True
    assert row.commission_value == Decimal("7.125") and isinstance(row.commission_value, Decimal)
    assert row.created_at.tzinfo is not None and row.created_at.utcoffset() == timedelta(0)
    assert again == [row]


def test_values_are_converted_by_their_columns_types_as_sqlalchemy_would(
    database: Database, program_id: int
) -> None:
    moment = datetime(2026, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))  # stored as 12:00 UTC
    row = {
        "click_id": "driver-1",
        "program_id": program_id,
        "publisher_id": factories_publisher(database),
        "traffic_source_id": None,
        "created_at": moment,
    }
    row["traffic_source_id"] = factories_source(database, row["publisher_id"])
    with database.driver(writes=True) as driver:
        ids = inserted_ids(driver, tables.clicks, [row], "click_id")
        driver.commit()

    with database.session() as session:
        stored = session.execute(select(tables.clicks).where(tables.clicks.c.click_id == "driver-1")).one()
    assert ids == {("driver-1",): stored.id}
    assert stored.created_at == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_a_value_its_type_refuses_is_refused(database: Database, program_id: int) -> None:
    naive = datetime(2026, 5, 1, 12, 0)
    with database.driver() as driver, pytest.raises(ValueError, match="naive datetime"):
        driver.rows(
            select(tables.programs.c.id).where(tables.programs.c.created_at < bindparam("before")),
            {"before": naive},
        )


def test_a_broken_unique_constraint_is_sqlalchemys_integrity_error_without_the_parameters(
    database: Database, program_id: int
) -> None:
    publisher = factories_publisher(database)
    row = {
        "click_id": "twice",
        "program_id": program_id,
        "publisher_id": publisher,
        "traffic_source_id": factories_source(database, publisher),
        "created_at": datetime.now(UTC),
    }
    with database.driver(writes=True) as driver:
        inserted_ids(driver, tables.clicks, [row], "click_id")
        driver.commit()
        with pytest.raises(exc.IntegrityError) as raised:
            inserted_ids(driver, tables.clicks, [{**row, "click_id": "twice"}], "click_id")
        driver.rollback()
        # The statement's values stay out of the error (others may hold secrets); the database's own
        # message may name the key, as it does through SQLAlchemy's execute.
        assert raised.value.params is None and "created_at" in str(raised.value.statement)


def test_what_is_not_committed_is_rolled_back_when_the_block_ends(
    database: Database, program_id: int
) -> None:
    update = tables.programs.update().where(tables.programs.c.id == bindparam("program_id"))
    with database.driver(writes=True) as driver:
        driver.rows(update.values(active=False), {"program_id": program_id})

    with database.driver() as driver:
        [row] = driver.rows(_PROGRAM, {"program_id": program_id})
    assert row.active is True


def early_and_late(database: Database) -> list[int]:
    """Two programs, created on 1 May 2026 at 12:00 UTC and a day later; their ids in that order."""
    with database.session() as session:
        early, late = (factories.program(session) for _ in range(2))
        early.created_at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
        late.created_at = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)
        return [early.id, late.id]


def test_an_in_list_is_expanded_to_its_length_and_its_values_converted(database: Database) -> None:
    ids = early_and_late(database)
    by_id = select(tables.programs.c.id).where(tables.programs.c.id.in_(bindparam("ids", expanding=True)))
    # The values of an IN list are converted by the column's type: the times are stored in UTC as naive
    # text on SQLite, so an aware time in another zone matches only once converted.
    two_hours_ahead = timezone(timedelta(hours=2))
    at = select(tables.programs.c.id).where(
        tables.programs.c.created_at.in_(bindparam("times", expanding=True)),
        tables.programs.c.id.in_(bindparam("ids", expanding=True)),
    )

    with database.driver() as driver:
        both = driver.rows(by_id.order_by(tables.programs.c.id), {"ids": ids})
        one = driver.rows(by_id, {"ids": ids[:1]})  # another length, the same statement
        none = driver.rows(by_id, {"ids": []})
        early_only = driver.rows(
            at, {"times": [datetime(2026, 5, 1, 14, 0, tzinfo=two_hours_ahead)], "ids": ids}
        )

    assert [row.id for row in both] == ids
    assert [row.id for row in one] == ids[:1]
    assert none == []
    assert [row.id for row in early_only] == ids[:1]


def test_in_an_in_list_statement_the_other_values_are_converted_and_a_missing_one_named(
    database: Database,
) -> None:
    ids = early_and_late(database)
    at = select(tables.programs.c.id).where(
        tables.programs.c.id.in_(bindparam("ids", expanding=True)),
        tables.programs.c.created_at == bindparam("at"),
    )
    in_paris = datetime(2026, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))  # 12:00 UTC

    with database.driver() as driver:
        found = driver.rows(at, {"ids": ids, "at": in_paris})
        with pytest.raises(ValueError, match="missing parameter 'at'"):
            driver.rows(at, {"ids": ids})

    assert [row.id for row in found] == ids[:1]


def test_inside_a_sessions_transaction_it_sees_the_sessions_writes_and_leaves_the_end_to_it(
    database: Database, program_id: int
) -> None:
    with database.session_factory() as session:
        session.execute(tables.programs.update().values(active=False))
        driver = DriverConnection.inside(session.connection())
        [row] = driver.rows(_PROGRAM, {"program_id": program_id})
        with pytest.raises(RuntimeError, match="owner"):
            driver.commit()
        driver.close()
        assert row.active is False  # the session's own write, not committed
        session.rollback()  # still the session's connection and transaction to end

    with database.driver() as other:
        [after] = other.rows(_PROGRAM, {"program_id": program_id})
    assert after.active is True


def test_on_sqlite_a_writing_driver_connection_holds_the_write_lock_from_its_first_read(
    sqlite_url: str,
) -> None:
    database = Database(sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    with database.driver(writes=True) as driver:
        driver.rows(select(tables.programs.c.id), {})
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
        driver.commit()
    with database.driver() as driver:  # a reader: another may write meanwhile
        driver.rows(select(tables.programs.c.id), {})
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()
    database.dispose()


@pytest.mark.postgres
def test_a_connection_the_server_dropped_is_not_given_to_the_next_request(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 3600.0)  # not pinged first: the statement meets it
    database = Database(postgres_url)
    dropped = drop_its_server_connection(database)
    with database.driver() as driver, pytest.raises(exc.OperationalError):
        driver.rows(select(tables.programs.c.id), {})

    assert backend_of(database) != dropped
    database.dispose()


def test_a_dropped_connection_inside_a_session_is_invalidated_and_the_sessions_rollback_succeeds(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 3600.0)
    database = Database(postgres_url)
    dropped = drop_its_server_connection(database)
    with database.session_factory() as session:
        driver = DriverConnection.inside(session.connection())
        with pytest.raises(exc.OperationalError) as raised:
            driver.rows(select(tables.programs.c.id), {})
        driver.close()
        session.rollback()  # its connection is known dead: nothing raised here

    assert raised.value.connection_invalidated
    assert backend_of(database) != dropped
    database.dispose()


def factories_publisher(database: Database) -> int:
    with database.session() as session:
        return factories.publisher(session).id


def factories_source(database: Database, publisher_id: int) -> int:
    with database.session() as session:
        publisher = session.get_one(factories.Publisher, publisher_id)
        return factories.traffic_source(session, publisher).id


def test_a_driver_connection_is_the_pools(database: Database) -> None:
    driver = DriverConnection(database.engine)
    assert database.engine.pool.checkedout() == 1
    driver.close()
    assert database.engine.pool.checkedout() == 0
