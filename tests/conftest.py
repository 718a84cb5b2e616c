"""Shared fixtures: a private Redis for the session, SQLite and (when TEST_POSTGRES_URL is set) PostgreSQL."""

from __future__ import annotations

import os
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
from sqlalchemy import create_engine, text

from app import create_app
from dispatcher.db import Database, get_db
from dispatcher.ledger import handoff
from dispatcher.models import Base
from dispatcher.redis_server import EmbeddedRedis

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
# CI sets this so that a missing PostgreSQL fails the run instead of quietly skipping its tests.
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"


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
    """The suite's own embedded Redis (never the machine's), emptied: no jobs, no login counters."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
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


@contextmanager
def postgres_schema(prefix: str = "test") -> Iterator[str]:
    """The URL of a fresh, empty schema in the test PostgreSQL database, dropped afterwards."""
    base = postgres_url_or_skip()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
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


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each kind: every test using it runs on SQLite and on PostgreSQL."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    Base.metadata.create_all(database.engine)
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
        **extra,
    }


@pytest.fixture
def app(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[Flask]:
    app = create_app(app_settings(tmp_path, database_url, redis_url, DEMO_MODE=True))
    Base.metadata.create_all(get_db(app).engine)
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
