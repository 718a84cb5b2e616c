"""Shared fixtures: a private Redis for each test process, SQLite and (when TEST_POSTGRES_URL is set)
PostgreSQL.

The suite runs in parallel (pytest-xdist): every fixture here belongs to one test process (its own Redis
server, its own PostgreSQL schema, its own SQLite files), so no test can break another's."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import is_hypothesis_test
from sqlalchemy import Connection, Table, create_engine, event, exc, make_url, text
from sqlalchemy.pool import NullPool

from app import create_app
from dispatcher.db import Database, get_db
from dispatcher.ledger import handoff
from dispatcher.models import Base
from dispatcher.redis_server import EmbeddedRedis

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
# CI sets this so that a missing PostgreSQL fails the run instead of quietly skipping its tests.
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"
# Accounts made by tests hash their passwords with one round of PBKDF2: scrypt cost 40% of a portal test's
# time. Production keeps scrypt (tests/dispatcher/test_config.py proves an app made without this uses it).
CHEAP_PASSWORDS = "pbkdf2:sha256:1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks what `make test-quick` leaves out by what a test uses: `browser` for tests driving Chromium,
    `fuzz` for property-based tests (Hypothesis, schemathesis). Tests starting the product's processes carry
    `processes` by hand."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "browser_page" in fixtures:
            item.add_marker(pytest.mark.browser)
        if is_hypothesis_test(getattr(item, "obj", None)):
            item.add_marker(pytest.mark.fuzz)


@pytest.fixture(autouse=True)
def _redis_emptied(request: pytest.FixtureRequest) -> None:
    """A test using this process's Redis starts with its database 0 empty: jobs, login counters or worker
    registrations left by the test before (in whatever order the tests were dealt out) are not its own.
    Databases 8-15 belong to the module-scoped API worlds (tests/api/conftest.py), kept for their module."""
    if "redis_url" in request.fixturenames:
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        client.flushdb()
        client.close()


@pytest.fixture(autouse=True)
def _hand_over_settled() -> Iterator[None]:
    """Each test's sales reach Redis within the test: the hand-over thread sends a few ms after a sale, and a
    job pushed then would land in the next test's queue (the suite shares one Redis)."""
    yield
    assert handoff.drain(), "the hand-over to RQ did not finish"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def clean_redis(redis_url: str) -> Iterator[redis.Redis]:
    """The suite's own embedded Redis (never the machine's), emptied (by `_redis_emptied`, as for every test
    using it): no jobs, no login counters."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def postgres_url_or_skip() -> str:
    if not POSTGRES_URL:
        message = (
            "PostgreSQL tests need TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@127.0.0.1/test)"
        )
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    return POSTGRES_URL


def worker_id() -> str:
    """This pytest-xdist worker's name (gw0, gw1...), or "main" when the suite runs in one process."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@contextmanager
def postgres_schema(prefix: str = "test") -> Iterator[str]:
    """The URL of a fresh, empty schema in the test PostgreSQL database, dropped afterwards."""
    base = postgres_url_or_skip()
    schema = f"{prefix}_{worker_id()}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


DEADLOCK_TRIES = 3


class PostgresTables:
    """One schema per test process with every table built once; each test starts from its tables emptied.

    Emptied by DELETE, not a rolled-back transaction: tests commit, and from other processes (workers,
    gunicorn) that a test's transaction would not cover. Not by TRUNCATE either, which gives every table and
    index a new file: 90 ms a test, where the DELETEs take about 1. But after a bulk test (50,000 sales) each
    deleted parent row checks its children's foreign keys among as many dead rows, which took 44 s, so past
    `BULK_ROWS` in any table it is TRUNCATE. Sequences start again at 1 (setval, which unlike ALTER SEQUENCE
    ... RESTART makes no new file). It runs before a test, not after, so that a test always starts empty
    whatever the one before it left behind.

    A test's own tables in this schema (made with SQLAlchemy) are emptied too: they are seen as they are
    created, because asking the catalog which tables there are took 7-15 ms a test (pg_class bloats with
    the schemas and tables that test runs create and drop)."""

    BULK_ROWS = 1000

    def __init__(self, url: str) -> None:
        self.text_url = url
        self.url = make_url(url)
        # One connection kept for the run: a new one each test took 25 ms more.
        self.engine = create_engine(self.url, pool_size=1)
        Base.metadata.create_all(self.engine)
        # Children before parents, for the foreign keys; a test's own tables (no keys to ours) after.
        self.ordered = [table.name for table in reversed(Base.metadata.sorted_tables)]
        self.own: set[str] = set()
        event.listen(Table, "after_create", self._created)
        event.listen(Table, "after_drop", self._dropped)

    def close(self) -> None:
        event.remove(Table, "after_create", self._created)
        event.remove(Table, "after_drop", self._dropped)
        self.engine.dispose()

    def _created(self, table: Table, connection: Connection, **_: Any) -> None:
        if connection.engine.url == self.url and table.name not in self.ordered:
            self.own.add(table.name)

    def _dropped(self, table: Table, connection: Connection, **_: Any) -> None:
        if connection.engine.url == self.url:
            self.own.discard(table.name)

    def emptied(self) -> str:
        for attempt in range(1, DEADLOCK_TRIES + 1):
            try:
                self._empty()
            except exc.OperationalError as error:
                # After a bulk test, autovacuum holds a big table while it waits for a lock that TRUNCATE,
                # locking every table, already holds (a VACUUM takes a table's TOAST table after the table);
                # PostgreSQL may end the TRUNCATE (seen once in a full run). Rolled back, it is done again.
                if attempt == DEADLOCK_TRIES or "deadlock detected" not in str(error.orig):
                    raise
                time.sleep(0.2 * attempt)
            else:
                break
        return self.text_url

    def _empty(self) -> None:
        quoted = [f'"{name}"' for name in [*self.ordered, *sorted(self.own)]]
        with self.engine.begin() as connection:
            # A connection of an earlier test still in a transaction would hold its locks for good: fail fast.
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            # One statement says whether any table holds more than BULK_ROWS rows, reading at most that many.
            bulk = connection.exec_driver_sql(
                " UNION ALL ".join(
                    f"(SELECT 1 FROM {name} OFFSET {self.BULK_ROWS} LIMIT 1)" for name in quoted
                )
            ).first()
            if bulk is None:
                connection.exec_driver_sql("; ".join(f"DELETE FROM {name}" for name in quoted))
            else:
                connection.exec_driver_sql(f"TRUNCATE {', '.join(quoted)} CASCADE")
            connection.execute(
                text(
                    "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, 1, false) "
                    "FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL"
                )
            )


@pytest.fixture(scope="session")
def postgres_tables() -> Iterator[PostgresTables]:
    with postgres_schema("tables") as url:
        tables = PostgresTables(url)
        yield tables
        tables.close()


@pytest.fixture
def postgres_url(postgres_tables: PostgresTables) -> str:
    """A PostgreSQL database with every table, all empty (this test process's schema)."""
    return postgres_tables.emptied()


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A PostgreSQL schema of its own with no table at all, for tests that build it (migrations)."""
    with postgres_schema() as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with every table, built once per test process and copied for each test."""
    path = tmp_path_factory.mktemp("schema") / "tables.db"
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    Base.metadata.create_all(engine)
    engine.dispose()
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A SQLite file of this test's own with every table, all empty."""
    path = tmp_path / "test.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A database of each kind with every table and no row: every test using it runs on SQLite and on
    PostgreSQL."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest) -> str:
    """A database of each kind with no table at all (for migrations)."""
    url: str = request.getfixturevalue(f"empty_{request.param}_url")
    return url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url, password_method=CHEAP_PASSWORDS)
    yield database
    database.dispose()


def app_settings(tmp_path: Path, database_url: str, redis_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test-secret-key-that-is-long-enough",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "POSTBACK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "PASSWORD_HASH_METHOD": CHEAP_PASSWORDS,
        **extra,
    }


@pytest.fixture
def app(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[Flask]:
    app = create_app(app_settings(tmp_path, database_url, redis_url, DEMO_MODE=True))
    yield app
    get_db(app).dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def exit_code_of(child: int, hung_on: str, timeout: float = 30.0) -> int:
    """The exit code of a child of fork(); the test fails (the child killed) if it still runs after
    `timeout` seconds, hung on `hung_on`."""
    deadline = time.monotonic() + timeout
    while (done := os.waitpid(child, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(child, 9)
            os.waitpid(child, 0)
            pytest.fail(f"the child hung on {hung_on}")
        time.sleep(0.02)
    return os.waitstatus_to_exitcode(done[1])
