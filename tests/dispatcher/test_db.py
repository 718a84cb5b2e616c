"""The database's connections: made again in a child of fork(), pinged only after being idle, and SQLite
writers beginning as writers."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, exc, text

from dispatcher import db as db_module
from dispatcher.db import Database
from tests.conftest import exit_code_of


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def backend_of(database: Database) -> object:
    """Which server connection the pool hands out (PostgreSQL), or the driver's connection (SQLite)."""
    with database.connect() as connection:
        if connection.dialect.name == "postgresql":
            return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return id(connection.connection.dbapi_connection)


def drop_its_server_connection(database: Database) -> object:
    """The server ends the connection the pool holds (PostgreSQL), as a restart or an idle timeout would;
    its backend id."""
    dropped = backend_of(database)
    admin = create_engine(database.url)
    with admin.begin() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped})
    admin.dispose()
    return dropped


@pytest.mark.processes
def test_a_forked_child_makes_its_own_connection_and_leaves_the_parents_alone(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every connection counts as idle: the child must not even ping the parent's.
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.0)
    parents = backend_of(database)  # now idle in the pool, inherited by the child
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:
        status = 1
        try:
            os.close(reading)
            os.write(writing, str(backend_of(database)).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(writing)
    with os.fdopen(reading) as pipe:
        childs = pipe.read()
    assert exit_code_of(child, "its first connection") == 0
    if database.engine.dialect.name == "postgresql":
        assert childs != str(parents)  # a server connection of its own, not the parent's socket
    assert backend_of(database) == parents  # the parent's is untouched and still in use


@pytest.mark.postgres
def test_an_idle_connection_the_server_dropped_is_replaced_before_use(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database(postgres_url)
    dropped = drop_its_server_connection(database)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.0)  # every connection counts as idle

    assert backend_of(database) != dropped  # the ping failed, the pool made another
    database.dispose()


@pytest.mark.postgres
def test_without_the_ping_a_dropped_connection_fails_its_request(postgres_url: str) -> None:
    """What the ping is for (and proof that the test above drops the connection for real)."""
    database = Database(postgres_url)
    drop_its_server_connection(database)

    with pytest.raises(exc.OperationalError):
        backend_of(database)
    database.dispose()


@pytest.mark.postgres
def test_only_a_connection_idle_for_a_while_is_pinged(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database(postgres_url)
    pinged: list[object] = []
    real = database.engine.dialect.do_ping
    monkeypatch.setattr(database.engine.dialect, "do_ping", lambda conn: pinged.append(conn) or real(conn))
    for _ in range(3):
        backend_of(database)  # in use again at once
    assert pinged == []

    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.0)  # every connection counts as idle
    backend_of(database)
    assert len(pinged) == 1
    database.dispose()


def test_on_sqlite_a_writing_connection_holds_the_write_lock_from_its_first_read(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    with database.connect(writes=True) as connection:
        connection.execute(text("SELECT 1"))  # a read, yet the write lock is taken: BEGIN IMMEDIATE
        other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
    with database.connect() as connection:  # a reader begins as a reader: another may write meanwhile
        connection.execute(text("SELECT 1"))
        other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()
    database.dispose()
