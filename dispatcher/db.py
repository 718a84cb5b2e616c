"""The database: one engine and session factory per process, usable with or without Flask."""

from __future__ import annotations

import datetime
import decimal
import functools
import os
import threading
import weakref
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from flask import Flask, g
from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Executable,
    Insert,
    Table,
    create_engine,
    event,
    insert,
    text,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from dispatcher.credentials import DEFAULT_PASSWORD_METHOD, PASSWORD_METHOD_INFO

EXTENSION_KEY = "dispatcher.db"
WAL_CHECKPOINT_PAGES = 10_000


class Database:
    def __init__(
        self, url: str, *, password_method: str = DEFAULT_PASSWORD_METHOD, **engine_options: Any
    ) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, **_engine_options(url, engine_options))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_on_connect)
            # pysqlite's own transaction handling defers BEGIN until the first write, which lets two
            # writers read the same row before either locks it; we emit BEGIN ourselves instead.
            event.listen(self.engine, "begin", _sqlite_on_begin)
        # Sessions carry the password method, for the accounts they create (see `dispatcher.credentials`).
        self.session_factory = sessionmaker(
            self.engine, expire_on_commit=False, info={PASSWORD_METHOD_INFO: password_method}
        )
        # SQLite: each thread keeps one connection for its Links (see `link`), closed when the thread ends
        # or by `dispose`, which also moves the generation on so that no thread uses one it closed.
        self._local = threading.local() if self.engine.dialect.name == "sqlite" else None
        self._kept_all: weakref.WeakSet[_Kept] = weakref.WeakSet()
        self._kept_lock = threading.Lock()
        self._generation = 0
        _databases.add(self)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        with self.session_factory() as session, session.begin():
            yield session

    @contextmanager
    def link(self) -> Iterator[Link]:
        """A DB-API connection for the hot paths (see `Link`), rolled back after.

        On PostgreSQL it is the pool's, returned after. On SQLite each thread keeps its own: taking one
        from the pool and giving it back (the checkout, the reset, the queue) cost a request 40-70 us, as
        much as one of its statements, and a SQLite connection is a file handle, never dropped by a server.
        A Link opened inside another on the same thread takes one from the pool.
        """
        kept = self._take_kept()
        link = Link(self.engine, kept.driver if kept is not None else None)
        try:
            yield link
        finally:
            link.close()
            if kept is not None:
                kept.busy = False

    def _take_kept(self) -> _Kept | None:
        """This thread's SQLite connection for Links, marked busy; None: not SQLite, or busy already."""
        local = self._local
        if local is None:
            return None
        pid = os.getpid()
        with self._kept_lock:  # `dispose` closes what is not busy, under the same lock
            kept: _Kept | None = getattr(local, "kept", None)
            if kept is not None and kept.busy:  # a Link inside a Link
                return None
            if kept is not None and kept.owner == (pid, self._generation):
                kept.busy = True
                return kept
        if kept is not None:
            kept.close()  # from before a `dispose` (or inherited: then only let go)
        pooled = self.engine.raw_connection()
        fresh = _Kept(pooled, pooled.driver_connection, pid)
        # Out of the pool for good: the pool makes another in its place, so however many threads keep
        # one, the sessions' pool is never short of connections.
        pooled.detach()
        # Closed when the thread's locals go, as the thread ends: with only the garbage collector, a server
        # starting a thread per request (the development server's) would keep one open per request.
        weakref.finalize(fresh, _close_kept, pooled, pid).atexit = False
        with self._kept_lock:
            fresh.owner = (pid, self._generation)
            fresh.busy = True
            local.kept = fresh
            self._kept_all.add(fresh)
        return fresh

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        """Close every connection of this process: the pool's, and the threads' kept ones that are not in a
        Link now (those are closed by their thread's next Link, or as it ends)."""
        with self._kept_lock:
            kept, self._kept_all = list(self._kept_all), weakref.WeakSet()
            self._generation += 1
            idle = [each for each in kept if not each.busy]
        for each in idle:
            each.close()
        self.engine.dispose()

    def forget_inherited(self) -> None:
        """In a child of fork(): leave every connection of the parent's to it, unused and open (closing one
        here could roll back its transaction or checkpoint its WAL); new ones are made as needed."""
        with self._kept_lock:
            self._kept_all = weakref.WeakSet()
            self._generation += 1
        self.engine.dispose(close=False)


class _Kept:
    """A thread's SQLite connection for its Links (see `Database.link`). Its thread's locals hold it; when
    they go, a finalizer closes it (`_close_kept`)."""

    __slots__ = ("pooled", "driver", "owner", "busy", "__weakref__")

    def __init__(self, pooled: Any, driver: Any, pid: int) -> None:
        self.pooled = pooled  # detached from the pool: closing it closes the connection
        self.driver = driver
        self.owner = (pid, -1)  # (process id, the database's generation), set under the lock
        self.busy = False

    def close(self) -> None:
        _close_kept(self.pooled, self.owner[0])


def _close_kept(pooled: Any, pid: int) -> None:
    if os.getpid() == pid:
        pooled.close()
    else:  # a parent's, in a child of fork() (whose other threads' locals go at once): let go, never closed
        _inherited.append(pooled)


_inherited: list[Any] = []
# Every Database of the process, for `forget_inherited` in a child of fork().
_databases: weakref.WeakSet[Database] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for database in list(_databases):
        database.forget_inherited()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _engine_options(url: str, overrides: dict[str, Any]) -> dict[str, Any]:
    # A server may drop idle connections; a SQLite file never does, so it is not pinged on every checkout.
    # Statement parameters hold signing secrets and credentials: kept out of SQL echo and of the text of
    # database errors (nothing parses that text; handlers catch the exception classes).
    options: dict[str, Any] = {"pool_pre_ping": not url.startswith("sqlite"), "hide_parameters": True}
    if url.startswith("sqlite"):
        # WAL readers never wait for the writer; a writer waits up to 30 s for another writer.
        options["connect_args"] = {"timeout": 30, "check_same_thread": False}
    options.update(overrides)
    return options


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # autocommit at driver level; "begin" below opens transactions
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode: a commit is written to the WAL but not synced; a power loss (not a crash of the
    # app) can lose the last commits, never corrupt the database. The usual trade-off, see README.
    cursor.execute("PRAGMA synchronous = NORMAL")
    # SQLite's own checkpoints (copying the WAL into the database, with an fsync) every 10,000 pages (~40 MB)
    # rather than its default 1,000: on the write-heavy paths (clicks, sales) they were half the cost of a
    # commit. On those paths a thread checkpoints long before (dispatcher.ledger.checkpoints); this is the
    # backstop, for the other writers and bulk writes.
    cursor.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


def init_app(app: Flask, database: Database) -> None:
    app.extensions[EXTENSION_KEY] = database
    app.teardown_appcontext(_close_request_session)


def get_db(app: Flask) -> Database:
    database: Database = app.extensions[EXTENSION_KEY]
    return database


def request_session() -> Session:
    """The session of the current request (or app context); closed when the context ends."""
    from flask import current_app

    if "db_session" not in g:
        g.db_session = get_db(current_app).session_factory()
    session: Session = g.db_session
    return session


def _close_request_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()


def fetch(db: Session | Connection | Link, statement: Executable, params: Mapping[str, Any]) -> list[Any]:
    """The rows of a Core statement, on a session's connection, a connection or a Link alike."""
    if isinstance(db, Link):
        return db.rows(statement, params)
    connection = db.connection() if isinstance(db, Session) else db
    return list(connection.execute(statement, params))


class Link:
    """One DB-API connection that runs Core statements without SQLAlchemy's execution layer.

    For the hottest requests (a click, a reported sale), `Connection.execute` costs about 25 us a statement
    and a transaction's begin and commit another 50 us: as much as the database work itself. A Link still
    takes its SQL from Core statements compiled by the engine's dialect (once per statement and set of
    parameters), and still converts values through the columns' types (Money, UTCDateTime, booleans) and
    fills in the columns' Python-side defaults of an INSERT; what it skips is the per-call machinery.
    Expanding IN parameters are not supported: the hot paths look up one thing at a time.

    A Link serves one request: it keeps one cursor, and remembers the conversions of the times and amounts
    it binds (the same moment goes into several columns of a sale's rows) until it is closed.

    Statements outside `begin()` run on their own: on SQLite each is its own transaction (the connection is
    in autocommit mode, see `_sqlite_on_connect`); on PostgreSQL they open one that `commit()` ends. Errors
    are the driver's (`link.errors.IntegrityError`), not SQLAlchemy's.
    """

    def __init__(self, engine: Engine, kept: Any | None = None) -> None:
        """On the driver's connection given (kept by a thread: see `Database.link`), else on one from the
        pool, returned by `close`."""
        self.dialect = engine.dialect
        self.errors: Any = engine.dialect.loaded_dbapi
        self.sqlite = engine.dialect.name == "sqlite"
        self.database_path = engine.url.database if self.sqlite else None
        self._dialect_key = (self.dialect.name, self.dialect.driver, self.dialect.server_version_info)
        self._pooled = None if kept is not None else engine.raw_connection()
        self._driver: Any = kept if self._pooled is None else self._pooled.driver_connection
        # One cursor for every statement of the Link: each is read to its end before the next runs.
        self._cursor: Any = None
        # Values already converted for the database in this Link: a sale binds the same moment as six
        # columns of three rows, each conversion (UTCDateTime on SQLite: checks, astimezone, formatting)
        # costing more than the lookup. See `_Prepared.parameters`.
        self._converted: dict[tuple[int, int], tuple[Any, Any]] = {}

    def _prepared(self, statement: Executable, keys: tuple[str, ...]) -> _Prepared:
        cache_key = (id(statement), self._dialect_key, keys)
        found = _cache.get(cache_key)
        if found is None or found.statement is not statement:
            if len(_cache) >= _CACHE_LIMIT:
                _cache.clear()
            found = _cache[cache_key] = _Prepared(statement, self.dialect, keys)
        return found

    def _run(self, prepared: _Prepared, given: Mapping[str, Any]) -> Any:
        return self._execute(prepared.sql, prepared.parameters(given, self._converted))

    def _execute(self, sql: str, values: Any) -> Any:
        cursor = self._cursor
        if cursor is None:
            cursor = self._cursor = self._driver.cursor()
        cursor.execute(sql, values)
        return cursor

    def rows(self, statement: Executable, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row the statement returns, as named tuples with the types' Python values."""
        given = params or {}
        prepared = self._prepared(statement, tuple(given))
        cursor = self._run(prepared, given)
        if cursor.description is None:
            return []
        fetched = cursor.fetchall()
        make_row = prepared.row_maker(self.dialect, cursor.description)
        return [make_row(row) for row in fetched]

    def first(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Any | None:
        found = self.rows(statement, params)
        return found[0] if found else None

    def insert(self, table: Table, params: Mapping[str, Any]) -> int:
        """Insert one row into `table` (single integer primary key); its new id.

        SQLite reports the id of the row just inserted (`lastrowid`, the rowid that an INTEGER PRIMARY KEY
        is): no RETURNING clause, no result row to fetch and convert. PostgreSQL returns it.
        """
        plain, returning = _inserts(table)
        if self.sqlite:
            return int(self._run(self._prepared(plain, tuple(params)), params).lastrowid)
        cursor = self._run(self._prepared(returning, tuple(params)), params)
        return int(cursor.fetchone()[0])

    def stage(self, table: Table, params: Mapping[str, Any], later: tuple[str, ...] = ()) -> Staged:
        """An INSERT of one row into `table`, its values converted now, to run with `insert_staged`.

        The `later` columns take ids known only once an earlier row of the same write transaction is in
        (the event's transaction id): plain integers, bound as given. Staging before the write transaction
        keeps the conversions out of it, where SQLite's single writer makes every other one wait.
        """
        plain, returning = _inserts(table)
        given = {**params, **dict.fromkeys(later)}
        prepared = self._prepared(plain if self.sqlite else returning, tuple(given))
        return Staged(prepared.sql, prepared.parameters(given, self._converted), prepared.slots(later))

    def insert_staged(self, staged: Staged, *late: int) -> int:
        """Run a staged INSERT with its `later` values, in their order; the new row's id (see `insert`)."""
        values = staged.values
        for keys, value in zip(staged.slots, late, strict=True):
            for key in keys:
                values[key] = value
        cursor = self._execute(staged.sql, values)
        return int(cursor.lastrowid if self.sqlite else cursor.fetchone()[0])

    def begin(self) -> None:
        """Start a write transaction. On SQLite it takes the write lock at once (hold `write_turn` first)."""
        if self.sqlite:
            self._driver.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._driver.commit()

    def rollback(self) -> None:
        self._driver.rollback()

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None
        if self._pooled is not None:
            self._pooled.close()  # back to the pool, which rolls back
        elif self._driver.in_transaction:  # kept: left as the pool would leave it
            self._driver.rollback()


@dataclass
class Staged:
    """An INSERT ready for the driver (see `Link.stage`): its SQL, its values, where the later ones go."""

    sql: str
    values: Any  # list (positional placeholders) or dict (named); insert_staged fills in the later ones
    slots: tuple[tuple[Any, ...], ...]  # per later value, the list indexes or names it is bound at


Processor = Callable[[Any], Any] | None
# Where a bound value comes from: the call's parameters, the statement itself, a column default.
_GIVEN, _FIXED, _DEFAULT = 0, 1, 2


class _Prepared:
    """A statement compiled for one dialect and one set of parameter names, with its value converters."""

    def __init__(self, statement: Executable, dialect: Dialect, keys: tuple[str, ...]) -> None:
        compiled: Any = cast(ClauseElement, statement).compile(dialect=dialect, column_keys=list(keys))
        if compiled.escaped_bind_names or any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError(f"a Link runs plain bind parameters only: {compiled.string}")
        names = list(compiled.positiontup) if compiled.positional else list(compiled.bind_names.values())
        self.statement = statement  # kept so that its id, the cache key, is not reused by another statement
        self.sql: str = compiled.string
        self.defaults = _insert_defaults(statement, set(keys))  # INSERT columns left out -> their default
        self.fixed = {  # values the statement carries itself (`kind == 'created'`)
            name: compiled.binds[name].effective_value
            for name in names
            if name not in keys and name not in self.defaults and not compiled.binds[name].required
        }
        missing = set(names) - set(keys) - set(self.fixed) - set(self.defaults)
        if missing:
            raise ValueError(f"missing parameters {sorted(missing)} for {compiled.string}")
        self.binds: dict[str, Processor] = {
            name: compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        }
        # Each bound name's value worked out up front (where it comes from, its converter), so a call only
        # walks this list: merging the sources into a dict per call cost as much as running the statement.
        # A name bound at several places is converted once.
        self._names = tuple(self.binds)
        self._steps: tuple[tuple[str, int, Any, Processor, int | None], ...] = tuple(
            (
                name,
                _GIVEN if name in keys else _FIXED if name in self.fixed else _DEFAULT,
                None if name in keys else self.fixed[name] if name in self.fixed else self.defaults[name],
                process,
                _conversion_of(compiled.binds[name].type) if process is not None else None,
            )
            for name, process in self.binds.items()
        )
        # For positional placeholders (SQLite's qmark), which value goes at each; None for named ones
        # (PostgreSQL's pyformat).
        self._placeholders: tuple[int, ...] | None = (
            tuple(self._names.index(name) for name in names) if compiled.positional else None
        )
        returned = getattr(statement, "exported_columns", None) or getattr(
            statement, "selected_columns", None
        )
        columns: list[Any] = list(returned or ())
        self.column_types = [column.type.dialect_impl(dialect) for column in columns]
        self.row_type: Any = namedtuple("Row", [column.key for column in columns])  # type: ignore[misc]
        # Result converters depend on the driver's type codes (PostgreSQL's numerics), known once run.
        self._makers: dict[tuple[Any, ...], Callable[[Sequence[Any]], Any]] = {}

    def parameters(self, given: Mapping[str, Any], converted: dict[tuple[int, int], tuple[Any, Any]]) -> Any:
        """The driver's parameters for `given`; `converted` remembers conversions of immutable values
        (by identity: an entry holds its value, so the id is not reused while it is there)."""
        values: list[Any] = []
        append = values.append
        for name, source, extra, process, conversion in self._steps:
            value = given[name] if source == _GIVEN else extra if source == _FIXED else extra()
            if process is not None and value is not None:
                if conversion is None:
                    value = process(value)
                else:
                    key = (conversion, id(value))
                    known = converted.get(key)
                    if known is None or known[0] is not value:
                        known = converted[key] = (value, process(value))
                    value = known[1]
            append(value)
        if self._placeholders is None:
            return dict(zip(self._names, values, strict=True))
        if len(self._placeholders) == len(values):  # each name once, in placeholder order
            return values
        return [values[index] for index in self._placeholders]

    def slots(self, names: tuple[str, ...]) -> tuple[tuple[Any, ...], ...]:
        """Where each of `names` goes in `parameters`' result: the list's indexes, or the name itself."""
        for name in names:
            if self.binds.get(name, False) is not None:  # absent, or a type that converts its values
                raise ValueError(f"{name} cannot be bound later in {self.sql}")
        if self._placeholders is None:
            return tuple((name,) for name in names)
        if len(self._placeholders) == len(self._names):
            return tuple((self._names.index(name),) for name in names)
        return tuple(
            tuple(at for at, index in enumerate(self._placeholders) if self._names[index] == name)
            for name in names
        )

    def row_maker(self, dialect: Dialect, description: Sequence[Any]) -> Callable[[Sequence[Any]], Any]:
        codes = tuple(column[1] for column in description)
        maker = self._makers.get(codes)
        if maker is None:
            processors = [
                kind.result_processor(dialect, code)
                for kind, code in zip(self.column_types, codes, strict=True)
            ]
            make = self.row_type._make
            converting = [(index, process) for index, process in enumerate(processors) if process is not None]
            if not converting:
                maker = make
            else:

                def maker(fetched: Sequence[Any]) -> Any:
                    values = list(fetched)
                    for index, process in converting:
                        value = values[index]
                        if value is not None:
                            values[index] = process(value)
                    return make(values)

            self._makers[codes] = maker
        return maker


# The hot paths' statements are built once, at import, so this stays small; the cap only guards against a
# caller that builds a statement per call (each would be compiled again, and kept).
_cache: dict[tuple[Any, ...], _Prepared] = {}
_CACHE_LIMIT = 1000


# Types whose conversion of a value may be remembered: immutable Python values (times, amounts), and a
# conversion that depends on nothing but the value and the type's parameters (its cache key).
_REMEMBERED_VALUES = (datetime.datetime, datetime.date, decimal.Decimal)
_conversions: dict[Any, int] = {}


def _conversion_of(kind: TypeEngine[Any]) -> int | None:
    """A small number naming the type's conversion (equal types share it), or None: not remembered."""
    try:  # a TypeDecorator takes the values its `impl` takes
        python_type = (kind.impl_instance if isinstance(kind, TypeDecorator) else kind).python_type
    except NotImplementedError:
        return None
    # SQLAlchemy's own key for "converts like this type" (its statement cache relies on it); a type that
    # opts out of caching (not a tuple) is not remembered either.
    cache_key = getattr(kind, "_static_cache_key", None)
    if not issubclass(python_type, _REMEMBERED_VALUES) or not isinstance(cache_key, tuple):
        return None
    try:
        return _conversions.setdefault(cache_key, len(_conversions))
    except TypeError:  # a parameter that cannot be a dict key
        return None


@functools.cache
def _inserts(table: Table) -> tuple[Insert, Insert]:
    """A table's INSERT as is and returning its id, built once (building one costs as much as running it)."""
    key = list(table.primary_key.columns)
    if len(key) != 1 or key[0].type.python_type is not int:
        raise ValueError(f"Link.insert needs a single integer primary key; {table.name} has {key}")
    return insert(table), insert(table).returning(key[0])


def _insert_defaults(statement: Executable, given: set[str]) -> dict[str, Callable[[], Any]]:
    """What SQLAlchemy would fill in for the columns an INSERT's parameters leave out (`default=`)."""
    if not isinstance(statement, Insert) or statement.select is not None:
        return {}
    return column_defaults(statement.table, given)


def column_defaults(table: Any, given: set[str]) -> dict[str, Callable[[], Any]]:
    """The columns' `default=` for those not in `given` (nor the primary key), as calls making the value."""
    defaults: dict[str, Callable[[], Any]] = {}
    for column in table.c:
        default = column.default
        if column.key in given or column.primary_key or default is None:
            continue
        if default.is_scalar:
            defaults[column.key] = functools.partial(_constant, default.arg)
        elif default.is_callable:
            defaults[column.key] = functools.partial(default.arg, None)
    return defaults


def _constant(value: Any) -> Any:
    return value
