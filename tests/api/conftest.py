"""Fixtures of the API tests. The world is built once per module and database, because a worker process
takes seconds to start; the tests read it and add to it, never reset it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from app import create_app
from dispatcher.db import get_db
from dispatcher.models import Base
from tests.api.fuzz_stats import FUZZ_STATS
from tests.api.world import World, build
from tests.conftest import app_settings, postgres_schema
from tests.portal.conftest import Receiver

_redis_dbs = itertools.cycle(range(8, 16))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('api') / 'api.db'}"
        return
    with postgres_schema("test_api") as url:
        yield url


@pytest.fixture(scope="module")
def world(
    module_database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp_path = tmp_path_factory.mktemp("world")
    # A database of the suite's private Redis for this world alone: no other test's jobs reach its worker.
    redis_url = f"{redis_url.rsplit('/', 1)[0]}/{next(_redis_dbs)}"
    redis.Redis.from_url(redis_url).flushdb()
    app = create_app(app_settings(tmp_path, module_database_url, redis_url))
    Base.metadata.create_all(get_db(app).engine)
    receiver = Receiver()
    try:
        yield build(app, receiver, module_database_url, redis_url, tmp_path)
    finally:
        receiver.close()
        get_db(app).dispose()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FUZZ_STATS.cases:
        terminalreporter.write_line(FUZZ_STATS.summary())
