"""Taking turns to write to SQLite without its busy-wait.

SQLite has one writer at a time; a second one that finds the lock taken sleeps and retries (1, 2, 5, 10 ... up
to 100 ms per try). Under load, with several gunicorn workers, those sleeps are most of a request's time. This
gate queues the ledger's writers on a file lock next to the database (and a thread lock within a process),
which wakes the next writer the moment the previous one commits. It changes no outcome, only the waiting:
SQLite's own locking still decides, and writers that do not take the gate are served as before. On PostgreSQL
it does nothing.

Every turn is counted for `checkpoints`, whose thread keeps SQLite's WAL checkpoints out of the turns.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from sqlalchemy.orm import Session

from dispatcher.db import Link
from dispatcher.ledger import checkpoints

_locks: dict[tuple[int, str], tuple[int, threading.Lock]] = {}
_locks_guard = threading.Lock()


@contextmanager
def write_turn(db: Session | Link) -> Iterator[None]:
    """Hold the SQLite database's write turn for the block (a no-op on other databases)."""
    path = _database_path(db)
    if path is None:
        yield
        return
    with path_turn(path):
        yield
    checkpoints.turn_taken(path, partial(path_turn, path))


@contextmanager
def path_turn(database: str) -> Iterator[None]:
    """The write turn of the SQLite database file at `database` (an absolute path)."""
    descriptor, thread_lock = _lock_for(f"{database}.write-turn")
    with thread_lock:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)


def _database_path(db: Session | Link) -> str | None:
    if isinstance(db, Link):
        database = db.database_path
    else:
        bind = db.get_bind()
        database = bind.engine.url.database if bind.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database)


def _lock_for(path: str) -> tuple[int, threading.Lock]:
    # Keyed by process id too: a descriptor inherited across fork() would share the lock with the parent.
    key = (os.getpid(), path)
    with _locks_guard:
        if key not in _locks:
            _locks[key] = (os.open(path, os.O_RDWR | os.O_CREAT, 0o600), threading.Lock())
        return _locks[key]
