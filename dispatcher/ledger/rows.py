"""Bulk writes shared by the ledger's modules."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Insert, Table, insert, text
from sqlalchemy.orm import Session
from sqlalchemy.schema import ColumnDefault

from dispatcher.db import Db
from dispatcher.driver_sql import DriverConnection

# Below this, one multi-row INSERT ... RETURNING is as good as anything.
PIPELINE_FROM_ROWS = 50


def connection_of(target: Session | Connection) -> Connection:
    """The connection to run statements on, from a session (its current transaction's) or as given."""
    return target.connection() if isinstance(target, Session) else target


def inserted_ids(
    target: Db, table: Table, rows: list[dict[str, Any]], *key: str
) -> dict[tuple[Any, ...], int]:
    """Insert `rows` and map each row's `key` values (unique among them) to its new id.

    Mapping by key rather than relying on RETURNING order: asking SQLAlchemy to keep the order
    (`sort_by_parameter_order`) makes it insert one row per statement on SQLite, ten times slower.
    The hot paths' driver connection (a reported sale: a row or a few) inserts them one by one, each with
    its columns' defaults filled in here; it knows each row's key already, only the id comes back.
    """
    if isinstance(target, DriverConnection):
        return {tuple(row[name] for name in key): _insert_one(target, table, row) for row in rows}
    connection = connection_of(target)
    if connection.dialect.name == "postgresql" and len(rows) >= PIPELINE_FROM_ROWS:
        return _pipelined(connection, table, rows, key)
    statement = _insert_returning(table, key)
    # One row is a plain execute: a list, even of one, goes through SQLAlchemy's batching machinery.
    result = connection.execute(statement, rows[0] if len(rows) == 1 else rows)
    return {tuple(row[1:]): row[0] for row in result}


def _insert_one(driver: DriverConnection, table: Table, row: dict[str, Any]) -> int:
    defaults = {name: make() for name, make in column_defaults(table, set(row)).items()}
    [inserted] = driver.rows(_insert_returning(table, ()), {**row, **defaults})
    return int(inserted[0])


@functools.cache
def _insert_returning(table: Table, key: tuple[str, ...]) -> Insert:
    """Built once per table and key: building it costs as much as running it."""
    return insert(table).returning(table.c.id, *(table.c[name] for name in key))


def _pipelined(
    connection: Connection, table: Table, rows: list[dict[str, Any]], key: tuple[str, ...]
) -> dict[tuple[Any, ...], int]:
    """PostgreSQL, many rows: ids drawn from the table's sequence, then psycopg's pipelined executemany.

    A multi-row INSERT of hundreds of rows is one huge statement that psycopg re-parses for its placeholders
    every time (too long for its cache): most of a CSV upload's time. A short statement sent many times in
    pipeline mode is parsed once. Values still go through the columns' types (Money, UTCDateTime).
    """
    sequence = connection.execute(
        text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table.name}
    ).scalar_one()
    ids = (
        connection.execute(
            text("SELECT nextval(:sequence) FROM generate_series(1, :count)"),
            {"sequence": sequence, "count": len(rows)},
        )
        .scalars()
        .all()
    )
    # What SQLAlchemy would fill in for the columns the rows leave out, worked out once for all of them.
    defaults = {name: make() for name, make in column_defaults(table, set(rows[0])).items()}
    names = ["id", *rows[0], *defaults]
    rows = [{**row, **defaults} for row in rows]
    processors = [table.c[name].type.bind_processor(connection.dialect) for name in names]
    values = [
        tuple(
            value if process is None else process(value)
            for value, process in zip((new_id, *(row[name] for name in names[1:])), processors, strict=True)
        )
        for new_id, row in zip(ids, rows, strict=True)
    ]
    quote = connection.dialect.identifier_preparer.quote
    statement = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names)}) "
        f"VALUES ({', '.join(['%s'] * len(names))})"
    )
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(statement, values)
    finally:
        cursor.close()
    return {tuple(row[name] for name in key): new_id for new_id, row in zip(ids, rows, strict=True)}


def column_defaults(table: Table, given: set[str] | frozenset[str]) -> dict[str, Callable[[], Any]]:
    """The columns' `default=` for those not in `given` (nor the primary key), as calls making the value:
    what SQLAlchemy fills in for an INSERT that leaves them out."""
    return _column_defaults(table, frozenset(given))


@functools.lru_cache(maxsize=256)
def _column_defaults(table: Table, given: frozenset[str]) -> dict[str, Callable[[], Any]]:
    # Worked out once per table and set of columns: a reported sale asks three times.
    defaults: dict[str, Callable[[], Any]] = {}
    for column in table.c:
        default = column.default
        if column.key in given or column.primary_key or not isinstance(default, ColumnDefault):
            continue
        if default.is_scalar:
            defaults[column.key] = functools.partial(_constant, default.arg)
        elif default.is_callable:
            defaults[column.key] = functools.partial(default.arg, None)
    return defaults


def _constant(value: Any) -> Any:
    return value
