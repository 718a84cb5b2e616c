"""The database: one engine and session factory per process, usable with or without Flask."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, g
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

EXTENSION_KEY = "dispatcher.db"


class Database:
    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, **_engine_options(url, engine_options))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_on_connect)
            # pysqlite's own transaction handling defers BEGIN until the first write, which lets two
            # writers read the same row before either locks it; we emit BEGIN ourselves instead.
            event.listen(self.engine, "begin", _sqlite_on_begin)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        with self.session_factory() as session, session.begin():
            yield session

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _engine_options(url: str, overrides: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {"pool_pre_ping": True}
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
    cursor.execute("PRAGMA synchronous = NORMAL")
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
