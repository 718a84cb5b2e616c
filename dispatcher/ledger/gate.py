"""Taking turns to write to SQLite without its busy-wait.

SQLite has one writer at a time; a second one that finds the lock taken sleeps and retries (1, 2, 5, 10 ... up
to 100 ms per try). Under load, with several gunicorn workers, those sleeps are most of a request's time. This
gate queues the ledger's writers on a file lock next to the database (and a thread lock within a process),
which wakes the next writer the moment the previous one commits. It changes no outcome, only the waiting:
SQLite's own locking still decides, and writers that do not take the gate are served as before. On PostgreSQL
it does nothing.

The turns of every process are counted together, in the lock file itself (read and rewritten in the turn):
every `checkpoints.EVERY_TURNS`th has its process's thread checkpoint the WAL, out of the turns.
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
    with path_turn(path) as descriptor:
        yield
        turns = _counted(descriptor)
    checkpoints.turn_taken(path, partial(path_turn, path), turns)


@contextmanager
def path_turn(database: str) -> Iterator[int]:
    """The write turn of the SQLite database file at `database` (an absolute path); the lock file's
    descriptor."""
    descriptor, thread_lock = _lock_for(f"{database}.write-turn")
    with thread_lock:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield descriptor
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)


def _counted(descriptor: int) -> int:
    """One more turn on the lock file's counter (its first 8 bytes; an empty file counts 0); the new count.
    Called in the turn, so no other writer counts at the same time."""
    turns = int.from_bytes(os.pread(descriptor, _COUNTER_BYTES, 0) or bytes(_COUNTER_BYTES), "little") + 1
    turns %= 1 << 63
    os.pwrite(descriptor, turns.to_bytes(_COUNTER_BYTES, "little"), 0)
    return turns


_COUNTER_BYTES = 8


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


def _after_fork_in_child() -> None:
    # The guard may have been held by another thread (a checkpointer's) at the moment of fork().
    global _locks_guard
    _locks_guard = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
