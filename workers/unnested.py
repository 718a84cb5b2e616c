"""Per-row writes of a batch as one statement on PostgreSQL: each column's values go as one array, and
`unnest` turns the arrays back into rows that an UPDATE ... FROM or an INSERT ... SELECT takes.

Why: an executemany sends one statement per row, and the attempt log writes three rows a delivery (the
"sending" attempt, its outcome, the delivery's new state). Measured in-process on PostgreSQL (a script, the
tables analyzed), the flush's two UPDATEs, 50 rows a batch: 55-59 us of the worker's CPU and 64-73 us of the
server's a row as executemany, 29-33 and 38-42 as one statement each. The statement's text is the same
whatever the batch's size, so the driver prepares it once. Only SQLAlchemy's public API:
`func.unnest(...).table_valued(...)` and typed `ARRAY` bind parameters.

Only for batches of MIN_ROWS or more: for fewer, PostgreSQL plans the statement afresh at each execution (its
generic plan counts 10 rows out of unnest, so it never looks cheaper than a plan made for the one row given)
and a row costs the server more than an executemany's does: 523 against 310-317 us for one row, 128-132
against 118-120 for five (the same measurement). Small batches are the rule at a moderate rate (a job of one
or two sales), large ones under load.

SQLite, the development database, keeps the plain executemany (`used_by`, `write`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence, Sized
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Executable,
    Integer,
    Table,
    Text,
    bindparam,
    cast,
    column,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import TypeEngine

from dispatcher.models.types import UTCDateTime

Columns = Sequence[tuple[str, TypeEngine[Any]]]
# A write's columns: each table column -> (the name of its value in the rows, its type in an array).
Spec = Mapping[str, tuple[str, TypeEngine[Any]]]

# The types of the arrays' items. JSON goes as its text, cast back by the statement where it is written: a
# dict inside an array would need the driver's own JSON wrapper.
BIGINT: TypeEngine[Any] = BigInteger()
INT: TypeEngine[Any] = Integer()
TEXT: TypeEngine[Any] = Text()
TIME: TypeEngine[Any] = UTCDateTime()
JSON_TEXT: TypeEngine[Any] = Text()


MIN_ROWS = 8


def used_by(session: Session, values: Sized) -> bool:
    """Whether to write these rows this way: on PostgreSQL, MIN_ROWS or more of them."""
    return len(values) >= MIN_ROWS and session.connection().dialect.name == "postgresql"


def write(
    session: Session,
    values: Sequence[Mapping[str, Any]],
    *,
    together: Executable,
    columns: Columns,
    each: Executable,
    key: str = "{}",
) -> None:
    """Writes these rows with `together` (a statement on `rows(columns)`) where `used_by` says so, else
    with `each` as an executemany of `values`."""
    if used_by(session, values):
        session.execute(together, arrays(values, columns, key=key))
    else:
        session.execute(each, values)


def rows(columns: Columns) -> TableValuedAlias:
    """The rows made of one array parameter per column (see `arrays`), as `<alias>.c.<name>`."""
    parameters = (bindparam(f"u_{name}", type_=ARRAY(type_)) for name, type_ in columns)
    derived = func.unnest(*parameters).table_valued(*(column(name, type_) for name, type_ in columns))
    return derived.render_derived()  # AS anon_1(name, ...): unnest's columns are named by the alias


def arrays(values: Sequence[Mapping[str, Any]], columns: Columns, *, key: str = "{}") -> dict[str, list[Any]]:
    """The parameters of `rows(columns)` for these rows: one list per column, taken from each row's
    `key.format(name)`. A JSON_TEXT column's values go as their JSON text (None as JSON null, as a JSON
    column given None stores it)."""
    parameters = {}
    for name, type_ in columns:
        field = key.format(name)
        items = [row[field] for row in values]
        parameters[f"u_{name}"] = [json.dumps(item) for item in items] if type_ is JSON_TEXT else items
    return parameters


def assigned(rows: TableValuedAlias, table: Table, spec: Spec) -> dict[str, ColumnElement[Any]]:
    """What each of `spec`'s table columns takes from `rows`: its value, JSON cast back from its text."""
    return {
        column: cast(rows.c[name], table.c[column].type) if type_ is JSON_TEXT else rows.c[name]
        for column, (name, type_) in spec.items()
    }
