"""The database: one engine and session factory per process, usable with or without Flask.

Everything goes through SQLAlchemy's public API: sessions (ORM) for the pages and the API's bookkeeping, Core
connections (`Database.connect`) where a session's unit of work is not needed, and for the hot paths (a
click, a reported sale) their Core statements sent to the driver as text (`Database.driver`, see
`dispatcher.driver_sql`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from flask import Flask, g
from sqlalchemy import Connection, Dialect, Engine, Executable, create_engine, event, exc, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from dispatcher.credentials import DEFAULT_PASSWORD_METHOD, PASSWORD_METHOD_INFO
from dispatcher.driver_sql import DriverConnection

EXTENSION_KEY = "dispatcher.db"
# An execution option of ours (SQLAlchemy passes such options through): the connection's transactions
# will write. On SQLite they start with BEGIN IMMEDIATE (see `_sqlite_on_begin`); elsewhere nothing changes.
WRITES = "dispatcher_writes"
# A server connection idle for longer than this is pinged before it is used (see `_idle_ping`).
PING_AFTER_IDLE_S = 5.0


class Database:
    def __init__(
        self, url: str, *, password_method: str = DEFAULT_PASSWORD_METHOD, **engine_options: Any
    ) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, **_engine_options(url, engine_options))
        sqlite = self.engine.dialect.name == "sqlite"
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_on_connect)
            # pysqlite's own transaction handling defers BEGIN until the first write, which lets two
            # writers read the same row before either locks it; we emit BEGIN ourselves instead.
            event.listen(self.engine, "begin", _sqlite_on_begin)
        # SQLAlchemy's recipe for pools and os.fork(): a connection made by another process is never used
        # (two processes on one socket mix their conversations), it is let go and a new one made. First of
        # the checkout listeners (they run in order): the idle ping must never touch another's socket.
        event.listen(self.engine, "connect", _note_process)
        event.listen(self.engine, "checkout", _refuse_other_process)
        if not sqlite:
            event.listen(self.engine, "checkin", _note_checkin)
            event.listen(self.engine, "checkout", _idle_ping(self.engine.dialect))
        # Sessions carry the password method, for the accounts they create (see `dispatcher.credentials`).
        self.session_factory = sessionmaker(
            self.engine, expire_on_commit=False, info={PASSWORD_METHOD_INFO: password_method}
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        with self.session_factory() as session, session.begin():
            yield session

    def connect(self, *, writes: bool = False) -> AbstractContextManager[Connection]:
        """A Core connection of this database (see `connect`)."""
        return connect(self.engine, writes=writes)

    @contextmanager
    def driver(self, *, writes: bool = False) -> Iterator[DriverConnection]:
        """The hot paths' connection (`dispatcher.driver_sql`); what it has not committed is rolled back
        when the block ends. `writes` as for `connect`."""
        connection = DriverConnection(self.engine, writes=writes)
        try:
            yield connection
        finally:
            connection.close()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        """Close every pooled connection of this process."""
        self.engine.dispose()


@contextmanager
def connect(engine: Engine, *, writes: bool = False) -> Iterator[Connection]:
    """A Core connection; what it has not committed is rolled back when the block ends. `writes`: its
    transactions will write (on SQLite they take the write lock at BEGIN: a transaction that has read cannot
    always become a writer there, see `_sqlite_on_begin`)."""
    with engine.connect() as connection:
        if writes:
            connection.execution_options(**{WRITES: True})
        yield connection


def _engine_options(url: str, overrides: dict[str, Any]) -> dict[str, Any]:
    # Statement parameters hold signing secrets and credentials: kept out of SQL echo and of the text of
    # database errors (nothing parses that text; handlers catch the exception classes).
    options: dict[str, Any] = {"hide_parameters": True}
    if url.startswith("sqlite"):
        # WAL readers never wait for the writer; a writer waits up to 30 s for another writer.
        options["connect_args"] = {"timeout": 30, "check_same_thread": False}
        # Parameters by name, as on PostgreSQL: the hot paths' compiled statements take a dict on both.
        options["paramstyle"] = "named"
    options.update(overrides)
    return options


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # autocommit at driver level; "begin" below opens transactions
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode: a commit is written to the WAL but not synced; a power loss (not a crash of the
    # app) can lose the last commits, never corrupt the database. SQLite's advice for WAL, see README.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # A transaction that will write takes the write lock at once: one that read first and then tries to
    # write fails at once (SQLITE_BUSY, no waiting) if another writer committed meanwhile.
    writes = connection.get_execution_options().get(WRITES, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def _note_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info["idle_since"] = time.monotonic()


def _idle_ping(
    dialect: Dialect,
) -> Callable[[Any, ConnectionPoolEntry, PoolProxiedConnection], None]:
    def ping_if_idle(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        """A connection idle for a while is pinged first (a server or a proxy may have dropped it):
        SQLAlchemy's `pool_pre_ping` pings on every checkout, a round trip to the server as long as a click's
        own statement. Under load connections are never idle that long; a connection that fails the ping is
        replaced (the pool retries the checkout on DisconnectionError)."""
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()  # ends the transaction the ping began (psycopg is not in autocommit)
        except Exception as error:  # noqa: BLE001 - whatever the driver raises, the connection is not usable
            raise exc.DisconnectionError(f"idle connection failed its ping: {error}") from error

    return ping_if_idle


def _note_process(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info["pid"] = os.getpid()


def _refuse_other_process(
    _dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    if record.info.get("pid") != os.getpid():
        # Let go without closing: closing it here would end the parent's session on the same socket. As in
        # SQLAlchemy's documented recipe ("Using Connection Pools with Multiprocessing or os.fork()"), whose
        # assignments its type stubs do not foresee.
        record.dbapi_connection = proxy.dbapi_connection = None  # type: ignore[misc]
        raise exc.DisconnectionError("connection made by another process; a new one is made")


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


# What the ledger reads and writes on: a session, a Core connection, or the hot paths' driver connection.
Db = Session | Connection | DriverConnection


def fetch(db: Db, statement: Executable, params: Mapping[str, Any]) -> list[Any]:
    """The rows of a Core statement, on any of them alike."""
    if isinstance(db, DriverConnection):
        return db.rows(statement, dict(params))
    connection = db.connection() if isinstance(db, Session) else db
    return list(connection.execute(statement, params))
