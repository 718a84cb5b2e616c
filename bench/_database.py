"""The database a benchmark runs on: PostgreSQL by default, SQLite by a flag; a fresh one each run.

PostgreSQL is the performance target (DESIGN.md), so every bench measures on it unless told otherwise. Its
URL is `BENCH_DATABASE_URL`, else `TEST_POSTGRES_URL`, else the local default below. A run gets a schema of
its own (`options=-csearch_path%3D<schema>` in the URL, as the test suite's `postgres_schema` does), dropped
at the end whatever happens, so runs never see each other's rows nor leave tables behind. The URL also names
the run as the connections' `application_name`, so a bench can find its own server backends
(`backend_pids`) among those of everyone else sharing the server.

SQLite: `--sqlite` on the command line or `BENCH_SQLITE=1` in the environment; a file in the run's
temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

from sqlalchemy import Connection, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from dispatcher.models import Base

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# A DROP SCHEMA waiting on a lock held by a process that outlived the bench (it should not) gives up after
# this long and says which schema to drop by hand, rather than hanging the bench.
DROP_LOCK_TIMEOUT = "30s"


def add_sqlite_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sqlite",
        action="store_true",
        help="run on a SQLite file instead of PostgreSQL (also BENCH_SQLITE=1)",
    )


def sqlite_wanted(prog: str, doc: str | None, argv: Sequence[str] | None) -> bool:
    """For a bench whose only argument is `--sqlite`: its command line read (`--help` prints `doc`), and
    SIGTERM made to end it through its `finally` blocks (`exit_on_sigterm`); whether to run on SQLite."""
    parser = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_sqlite_flag(parser)
    sqlite = wants_sqlite(parser.parse_args(argv).sqlite)
    exit_on_sigterm()
    return sqlite


def wants_sqlite(flag: bool, environ: Mapping[str, str] | None = None) -> bool:
    """SQLite when asked by the `--sqlite` flag or `BENCH_SQLITE=1`."""
    env = os.environ if environ is None else environ
    return flag or env.get("BENCH_SQLITE", "").strip().lower() in ("1", "true", "yes")


def postgres_url(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("BENCH_DATABASE_URL") or env.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def describe(url: str) -> str:
    """The database for a bench's first lines: kind and where, never a password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite ({parsed.database})"
    schema = parsed.query.get("application_name", "")
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database}"
    return f"PostgreSQL ({where}, schema {schema})" if schema else f"PostgreSQL ({where})"


@contextlib.contextmanager
def fresh_database(
    tmp: Path, *, sqlite: bool, prefix: str = "bench", environ: Mapping[str, str] | None = None
) -> Iterator[str]:
    """The URL of an empty database of the run's own (no tables: the bench makes them), removed after.

    Stop every process using it before the block ends: a connection in a transaction would hold the DROP.
    """
    if sqlite:
        yield f"sqlite:///{tmp / f'{prefix}-{uuid.uuid4().hex[:8]}.db'}"
        return
    base = postgres_url(environ)
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}&application_name={schema}"
    finally:
        try:
            with admin.begin() as connection:
                connection.execute(text(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'"))
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        except Exception as exc:  # noqa: BLE001 - the bench's own outcome (or error) is what to report
            print(f"could not drop schema {schema} (drop it by hand): {exc}", file=sys.stderr)
        admin.dispose()


def autovacuum_warning(url: str) -> str | None:
    """A line to print when the PostgreSQL server runs without autovacuum (None otherwise, and on SQLite).

    Production servers run it; without it a long bench's churned tables are never vacuumed nor analyzed:
    bench.cluster's `deliveries` held 40,000 live and 195,326 dead rows, and its claims ran for minutes.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return None
    admin = create_engine(parsed.difference_update_query(["options", "application_name"]), poolclass=NullPool)
    try:
        with admin.connect() as connection:
            setting = connection.execute(text("SHOW autovacuum")).scalar_one()
    finally:
        admin.dispose()
    if setting == "on":
        return None
    return (
        "warning: autovacuum is off on this PostgreSQL server: the run's tables are never vacuumed nor "
        "analyzed, and a long run slows down as their dead rows pile up"
    )


def analyze_schema(connection: Connection) -> None:
    """ANALYZE the run's own tables (those of `dispatcher.models`, found through the search path).

    A bare ANALYZE reads every table of the database, other schemas' too: the test suite's, beside a bench on
    the same server. `tests/workers/test_job_plans.py` keeps its tables never analyzed, and the ANALYZE of a
    bench run by another test (`bench.search`'s seed, `bench.retention`) changed a job's plan there mid-test
    (a clean-clone CI run: 10,000 transactions read for 50).
    """
    quoted = connection.dialect.identifier_preparer.format_table
    names = ", ".join(quoted(table) for table in Base.metadata.sorted_tables)
    connection.execute(text(f"ANALYZE {names}"))


def backend_pids(url: str) -> list[int]:
    """The PostgreSQL server processes serving connections of this run (by the `application_name` in its
    URL); [] on SQLite or when the server cannot be asked."""
    parsed = make_url(url)
    name = parsed.query.get("application_name")
    if parsed.get_backend_name() == "sqlite" or not isinstance(name, str):
        return []
    admin = create_engine(parsed.difference_update_query(["options", "application_name"]), poolclass=NullPool)
    try:
        with admin.connect() as connection:
            rows = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"), {"name": name}
            )
            return [int(pid) for (pid,) in rows]
    except Exception:  # noqa: BLE001 - CPU figures are extra; a bench does not fail for them
        return []
    finally:
        admin.dispose()


def exit_on_sigterm() -> None:
    """SIGTERM (a CI timeout, `kill`) ends the bench through its `finally` blocks, as Ctrl-C does: its
    servers are stopped and its schema dropped, not left behind."""

    def leave(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
