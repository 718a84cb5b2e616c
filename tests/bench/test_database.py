"""Where the benchmarks run: PostgreSQL unless SQLite is asked for, in a schema of the run's own that is gone
afterwards, whatever happened."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from bench._database import (
    DEFAULT_POSTGRES_URL,
    analyze_schema,
    autovacuum_warning,
    backend_pids,
    describe,
    fresh_database,
    postgres_url,
    wants_sqlite,
)
from dispatcher.models import Base
from tests.conftest import postgres_schema, postgres_url_or_skip


@pytest.mark.parametrize(
    ("flag", "environ", "sqlite"),
    [
        (False, {}, False),
        (True, {}, True),
        (False, {"BENCH_SQLITE": "1"}, True),
        (False, {"BENCH_SQLITE": "0"}, False),
        (False, {"BENCH_SQLITE": ""}, False),
    ],
)
def test_sqlite_is_used_only_when_asked_for(flag: bool, environ: dict[str, str], sqlite: bool) -> None:
    assert wants_sqlite(flag, environ) is sqlite


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        (
            {
                "BENCH_DATABASE_URL": "postgresql+psycopg://b/x",
                "TEST_POSTGRES_URL": "postgresql+psycopg://t/x",
            },
            "postgresql+psycopg://b/x",
        ),
        ({"TEST_POSTGRES_URL": "postgresql+psycopg://t/x"}, "postgresql+psycopg://t/x"),
        ({}, DEFAULT_POSTGRES_URL),
    ],
)
def test_the_postgres_url_is_the_benchs_then_the_tests_then_the_local_default(
    environ: dict[str, str], url: str
) -> None:
    assert postgres_url(environ) == url


def test_the_description_never_shows_a_password() -> None:
    described = describe("postgresql+psycopg://bench:s3cret@db.example:6543/perf?application_name=bench_x")
    assert described == "PostgreSQL (db.example:6543/perf, schema bench_x)"


def test_sqlite_is_a_file_in_the_runs_directory(tmp_path: Path) -> None:
    with fresh_database(tmp_path, sqlite=True, environ={}) as url:
        assert url.startswith(f"sqlite:///{tmp_path}/")


def _schemas(base: str, prefix: str) -> list[str]:
    engine = create_engine(base)
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :prefix"), {"prefix": f"{prefix}%"}
        )
        names = [name for (name,) in found]
    engine.dispose()
    return names


@pytest.mark.postgres
def test_a_run_gets_a_schema_of_its_own_dropped_after_even_on_failure(tmp_path: Path) -> None:
    base = postgres_url_or_skip()
    prefix = f"benchtest_{tmp_path.name[-8:].lower().replace('-', '_')}"
    with (
        pytest.raises(RuntimeError),
        fresh_database(tmp_path, sqlite=False, prefix=prefix, environ={"BENCH_DATABASE_URL": base}) as url,
    ):
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE mine (id integer)"))
            where = connection.execute(text("SELECT current_schema()")).scalar_one()
        assert where.startswith(prefix) and _schemas(base, prefix) == [where]
        assert backend_pids(url), "the run's own connections are found by their application_name"
        engine.dispose()
        raise RuntimeError("the bench failed")
    assert _schemas(base, prefix) == []


@pytest.mark.postgres
def test_a_server_without_autovacuum_is_named_before_a_long_run() -> None:
    url = postgres_url_or_skip()
    engine = create_engine(url)
    with engine.connect() as connection:
        setting = connection.execute(text("SHOW autovacuum")).scalar_one()
    engine.dispose()

    warning = autovacuum_warning(url)

    assert (warning is not None) == (setting != "on")
    assert warning is None or "autovacuum is off" in warning


def test_sqlite_has_no_autovacuum_warning(tmp_path: Path) -> None:
    assert autovacuum_warning(f"sqlite:///{tmp_path / 'bench.db'}") is None


@pytest.mark.postgres
def test_a_benchs_analyze_leaves_the_other_schemas_tables_never_analyzed() -> None:
    # A bare ANALYZE reached the tables of tests running beside it (test_job_plans keeps its own never
    # analyzed) and changed their plans.
    with postgres_schema("bench") as ours, postgres_schema("beside") as beside:
        engines = {url: create_engine(url) for url in (ours, beside)}
        try:
            for engine in engines.values():
                Base.metadata.create_all(engine)
            with engines[ours].begin() as connection:
                analyze_schema(connection)
            assert _reltuples(engines[ours]) == 0  # analyzed: empty
            assert _reltuples(engines[beside]) == -1  # never analyzed
        finally:
            for engine in engines.values():
                engine.dispose()


def _reltuples(engine: Engine) -> float:
    """pg_class's row count of the schema's `deliveries` (-1 until analyzed or vacuumed, since PostgreSQL 14;
    0 before)."""
    with engine.connect() as connection:
        return float(
            connection.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = 'deliveries'::regclass")
            ).scalar_one()
        )
