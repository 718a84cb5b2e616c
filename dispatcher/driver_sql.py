"""The hot paths' statements sent to the database driver directly: a click, a reported sale, and the
worker's claim and load of a batch.

Measured on PostgreSQL (`bench.intake`, profiles in README's Speed section): running a statement through
SQLAlchemy's `Connection.execute` (its cache key, execution context and result objects) costs the request
about as much CPU as the driver's own work for it, and a sale runs four. Here the same Core statements are
compiled once per dialect (`ClauseElement.compile`, `Compiled.string`) and their text is run on the pool's
DBAPI connection (`Engine.raw_connection`), with every value converted by its column's type
(`TypeEngine.bind_processor`, `result_processor`): only SQLAlchemy's public API, and one set of statements
for SQLite and PostgreSQL alike. SQLite engines use the `named` parameter style (see `dispatcher.db`), so the
compiled text takes parameters by name there as on PostgreSQL.

Supported: bind parameters, plain or expanding (an IN list: the SQL for the list's length is made by
`SQLCompiler.construct_expanded_state`, as SQLAlchemy's execution does), and INSERTs given every column they
set (`rows.column_defaults` fills in the defaults). Driver errors are raised as SQLAlchemy's
(`DBAPIError.instance`), so callers catch `sqlalchemy.exc.IntegrityError` whichever way a statement ran.

The worker claims and reads its batch the same way, inside the transaction its ORM session began
(`rows_inside`): through `Session.execute` the two reads of a one-delivery batch cost 505 us of CPU (the
postbacks as ORM instances), against 123 on the driver (in-process, PostgreSQL; `workers.loading`).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Dialect, Engine, Executable, Insert, Update, exc
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import visitors
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ClauseElement
from sqlalchemy.types import TypeEngine

Processor = Callable[[Any], Any] | None


class DriverConnection:
    """A DBAPI connection of the engine's pool for one request; returned to the pool (rolled back) by
    `close`. Transactions begin with the first statement and end with `commit` or `rollback`.

    `writes`: its transactions will write. On SQLite they begin with BEGIN IMMEDIATE, as
    `dispatcher.db.WRITES` makes SQLAlchemy's (a transaction that has read cannot always become a writer).
    """

    def __init__(self, engine: Engine, *, writes: bool = False, within: Connection | None = None) -> None:
        """`within`: see `inside`."""
        self.dialect = engine.dialect
        self._owned = within is None
        self._within = within
        self._pooled: PoolProxiedConnection = engine.raw_connection() if within is None else within.connection
        self._sqlite = engine.dialect.name == "sqlite"
        self._begin = "BEGIN IMMEDIATE" if writes else "BEGIN"
        # A connection of a Session is in the transaction its owner began (SQLite: dispatcher.db's "begin").
        self._in_transaction = not self._owned
        self._cursor: Any = None
        self._invalidated = False

    @classmethod
    def inside(cls, connection: Connection) -> DriverConnection:
        """The DBAPI connection of a Core connection (a Session's), in the transaction it has begun: for
        statements of a transaction its owner ends. `commit`, `rollback` and returning it to the pool stay the
        owner's: `close` only closes the cursor."""
        return cls(connection.engine, within=connection)

    def rows(self, statement: Executable, params: dict[str, Any]) -> list[Any]:
        """The rows the statement returns (named tuples, values converted by the columns' types)."""
        prepared = _prepared(statement, self.dialect, tuple(params))
        cursor = self._execute(*prepared.sql_and_values(params))
        if not prepared.column_types:
            return []
        make = prepared.maker or prepared.make_maker(self.dialect, cursor.description)
        return [make(row) for row in cursor.fetchall()]

    def commit(self) -> None:
        self._owner_only("commit")
        self._run(self._pooled.commit)
        self._in_transaction = False

    def rollback(self) -> None:
        self._owner_only("rollback")
        self._run(self._pooled.rollback)
        self._in_transaction = False

    def close(self) -> None:
        cursor, self._cursor = self._cursor, None
        try:
            if cursor is not None and not self._invalidated:
                cursor.close()
        finally:
            if self._owned:
                self._pooled.close()  # back to the pool, which rolls back what is left

    def _owner_only(self, what: str) -> None:
        if not self._owned:
            raise RuntimeError(f"{what}: the transaction is its connection's owner's to end")

    def _execute(self, sql: str, values: dict[str, Any]) -> Any:
        if self._cursor is None:
            self._cursor = self._pooled.cursor()
        if self._sqlite and not self._in_transaction:
            # The connection is in the driver's autocommit mode (dispatcher.db): the transaction is ours.
            self._run(self._cursor.execute, self._begin)
        self._in_transaction = True
        return self._run(self._cursor.execute, sql, values)

    def _run(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except self.dialect.loaded_dbapi.Error as error:
            if self.dialect.is_disconnect(error, self._pooled.dbapi_connection, self._cursor):
                # Not returned to the pool: the next request gets another. A Session's connection is
                # invalidated through it, so that its owner's rollback does not fail on it in turn.
                if self._within is not None:
                    self._within.invalidate(error)
                else:
                    self._pooled.invalidate(error)
                self._invalidated = True
            raise exc.DBAPIError.instance(
                str(args[0]) if args else None,
                None,  # parameters hold secrets: never in an error's text
                error,
                self.dialect.loaded_dbapi.Error,
                hide_parameters=True,
                connection_invalidated=self._invalidated,
                dialect=self.dialect,
            ) from error


def rows_inside(connection: Connection, statement: Executable, params: dict[str, Any]) -> list[Any]:
    """`DriverConnection.rows` on a Core connection (a Session's), in its transaction (see `inside`)."""
    driver = DriverConnection.inside(connection)
    try:
        return driver.rows(statement, params)
    finally:
        driver.close()


def sql_and_values(
    statement: Executable, dialect: Dialect, params: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The SQL and the converted values that `DriverConnection.rows` would send (to EXPLAIN a statement)."""
    return _prepared(statement, dialect, tuple(params)).sql_and_values(params)


class _Prepared:
    """A statement compiled for one dialect and one set of parameter names, with its value converters."""

    def __init__(self, statement: Executable, dialect: Dialect, keys: tuple[str, ...]) -> None:
        if not isinstance(statement, ClauseElement):
            raise TypeError(f"not a Core statement: {statement!r}")
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.statement = statement  # kept so that its id, the cache key, is not reused by another statement
        self.sql: str = compiled.string
        self.expanding: SQLCompiler | None = None
        self.fixed: dict[str, Any] = {}
        missing = _required(statement) - set(keys)
        if missing:
            raise ValueError(f"missing parameter {sorted(missing)[0]!r} for {self.sql}")
        types = _parameter_types(statement, keys)
        self.processors: tuple[tuple[str, Processor], ...] = tuple(
            (key, types[key].dialect_impl(dialect).bind_processor(dialect)) for key in keys
        )
        self.by_key: dict[str, Processor] = dict(self.processors)
        if any(isinstance(e, BindParameter) and e.expanding for e in visitors.iterate(statement)):
            # Its SQL depends on the lists' lengths: made for each call by SQLAlchemy's own expansion, which
            # names each list item's converter; the other values are converted here (see sql_and_values).
            self.expanding = cast(SQLCompiler, compiled)
        else:
            # Values the statement carries itself (a literal compared in a subquery), sent as they are:
            # plain text and numbers only, which need no conversion by a type.
            self.fixed = {key: value for key, value in compiled.params.items() if key not in keys}
            for key, value in self.fixed.items():
                if not isinstance(value, str | int):
                    raise ValueError(
                        f"{key!r}: a literal of type {type(value).__name__} needs its type's conversion"
                    )
        columns = _columns(statement)
        # The dialect's own type (SQLite's DATETIME reads text, say): what `result_processor` converts with.
        self.column_types: list[TypeEngine[Any]] = [column.type.dialect_impl(dialect) for column in columns]
        self.row_type: Any = namedtuple("Row", [column.key for column in columns])  # type: ignore[misc]
        self.maker: Callable[[Sequence[Any]], Any] | None = None

    def sql_and_values(self, given: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The SQL to send and its values, converted by their types."""
        if self.expanding is None:
            return self.sql, self.values(given)
        state = self.expanding.construct_expanded_state(given)
        # One converter a value: a list item's as the expansion names it, another value's by its type.
        expanded = state.processors
        values = {
            key: process(value)
            if value is not None and (process := expanded.get(key) or self.by_key.get(key))
            else value
            for key, value in state.parameters.items()
        }
        return state.statement, values

    def values(self, given: dict[str, Any]) -> dict[str, Any]:
        values = dict(self.fixed)
        for key, process in self.processors:
            value = given[key]
            values[key] = process(value) if process is not None and value is not None else value
        return values

    def make_maker(self, dialect: Dialect, description: Sequence[Any]) -> Callable[[Sequence[Any]], Any]:
        """Rows of the driver's cursor into named tuples of the columns' Python values, worked out at the
        first run: result converters depend on the driver's type codes (PostgreSQL's numerics), and a
        statement's result columns keep their types (reading the cursor's description every time made
        psycopg build its column objects again, 13 per statement)."""
        codes = tuple(column[1] for column in description)
        processors = [
            kind.result_processor(dialect, code) for kind, code in zip(self.column_types, codes, strict=True)
        ]
        make = self.row_type._make
        converting = [(index, process) for index, process in enumerate(processors) if process is not None]

        def maker(fetched: Sequence[Any]) -> Any:
            values = list(fetched)
            for index, process in converting:
                if values[index] is not None:
                    values[index] = process(values[index])
            return make(values)

        self.maker = maker
        return maker


def _columns(statement: Executable) -> list[Any]:
    """What the statement returns: a SELECT's columns, an INSERT's or UPDATE's RETURNING."""
    if isinstance(statement, Insert | Update):
        return list(statement.exported_columns)
    return list(getattr(statement, "selected_columns", ()))


def _required(statement: Executable) -> set[str]:
    """The names of the parameters the statement needs given (`bindparam` without a value)."""
    return {
        element.key
        for element in visitors.iterate(statement)  # type: ignore[arg-type]
        if isinstance(element, BindParameter) and element.required
    }


def _parameter_types(statement: Executable, keys: tuple[str, ...]) -> dict[str, TypeEngine[Any]]:
    """The type converting each given parameter: an INSERT's column, else the bind parameter's own (SQL
    compares a parameter with a column: `column == bindparam(...)` takes the column's type)."""
    if isinstance(statement, Insert) and statement.select is None:
        table = statement.table
        return {key: table.c[key].type for key in keys}
    types: dict[str, TypeEngine[Any]] = {}
    wanted = set(keys)
    for element in visitors.iterate(statement):  # type: ignore[arg-type]
        if isinstance(element, BindParameter) and element.key in wanted:
            types.setdefault(element.key, element.type)
    missing = wanted - set(types)
    if missing:
        raise ValueError(f"parameters {sorted(missing)} are not in the statement")
    return types


# The hot paths' statements are built once, at import, so this stays small; the cap only guards against a
# caller that builds a statement per call (each would be compiled again, and kept).
_cache: dict[tuple[Any, ...], _Prepared] = {}
_CACHE_LIMIT = 1000


def _prepared(statement: Executable, dialect: Dialect, keys: tuple[str, ...]) -> _Prepared:
    key = (id(statement), dialect.name, dialect.driver, dialect.paramstyle, keys)
    found = _cache.get(key)
    if found is None or found.statement is not statement:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        found = _cache[key] = _Prepared(statement, dialect, keys)
    return found
