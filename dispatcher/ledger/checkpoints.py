"""SQLite's WAL checkpoints, run by a thread of each process, mostly outside the write turn.

A checkpoint copies the pages written to the WAL back into the database file and syncs both: about 30 ms
every few hundred sales here. SQLite runs one from inside the commit that takes the WAL past its threshold
(`wal_autocheckpoint`), and on the ledger's hot paths that commit is inside the write turn (see `gate`):
every other writer waits for the whole copy and both syncs, its CPU idle (measured: half the machine's idle
time under `bench.intake`). Here a thread of the process does it instead, in the process that takes every
`EVERY_TURNS`th turn (counted across processes by `gate`):

1. a checkpoint without the turn, which copies nearly everything while the writers carry on;
2. a second one in the turn, which copies what they wrote meanwhile (a few milliseconds). With no writer
   between, it leaves nothing behind, which lets the next writer start the WAL again from its beginning. A
   checkpoint that always trailed the writers would let the WAL grow for as long as sales come in, and
   every page read costs more the longer it is (measured: slower than SQLite's own, not faster).

Both are PASSIVE: they never wait for readers or writers, nor make them wait. SQLite's own autocheckpoint
stays on as the backstop (a process that writes in bulk, a thread that is behind). sqlite3 lets go of the
GIL while it works, so the thread's copying and syncing do not hold up the requests of its process.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

log = logging.getLogger(__name__)

# A sale writes ~18 WAL frames, a click ~6: about 4,600 frames at most between checkpoints for one-delivery
# sales (measured: ~4,500), well under SQLite's own threshold, whatever the number of processes.
EVERY_TURNS = 256
IDLE_EXIT_S = 30.0  # a thread with nothing to do closes its connection and ends

Turn = Callable[[], AbstractContextManager[object]]

_lock = threading.Lock()
_checkpointers: dict[str, _Checkpointer] = {}


def turn_taken(path: str, turn: Turn, turns: int) -> None:
    """The write turn numbered `turns` on the database at `path` is over; every `EVERY_TURNS`th wakes this
    process's checkpointer of it.

    `turn` enters the write turn (the checkpointer's second step runs in it). Never raises: a checkpoint
    that cannot start is SQLite's autocheckpoint's to do.
    """
    if turns % EVERY_TURNS:
        return
    with _lock:
        checkpointer = _checkpointers.get(path)
        if checkpointer is None:
            checkpointer = _checkpointers[path] = _Checkpointer(path, turn)
        checkpointer.wake()


class _Checkpointer:
    def __init__(self, path: str, turn: Turn) -> None:
        self.path = path
        self.turn = turn
        self.done = 0  # checkpoints completed, for tests and debugging
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Called under `_lock`: starts the thread if it is not running."""
        self._wanted.set()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)
            try:
                self._thread.start()
            except RuntimeError:  # no thread can start (interpreter shutting down, thread limit)
                self._thread = None
                log.warning("no thread for WAL checkpoints; SQLite's autocheckpoint does them", exc_info=True)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                if not self._wanted.wait(IDLE_EXIT_S):
                    with _lock:
                        if not self._wanted.is_set():  # under the lock: no wake() can be lost
                            self._thread = None
                            return
                self._wanted.clear()
                try:
                    if connection is None:
                        connection = _connect(self.path)
                    checkpoint(connection, self.turn)
                    self.done += 1
                except Exception as exc:  # noqa: BLE001 - SQLite's, or the turn's lock file's (OSError)
                    log.warning("WAL checkpoint of %s failed; SQLite's own will do: %s", self.path, exc)
                    if connection is not None:
                        connection.close()
                    connection = None
        except BaseException:
            with _lock:  # ended by something else: the next wake() starts another thread
                self._thread = None
            raise
        finally:
            if connection is not None:
                connection.close()


def checkpoint(connection: sqlite3.Connection, turn: Turn) -> tuple[tuple[int, int, int], ...]:
    """The two steps (see the module docstring); each one's (busy, frames in the WAL, frames copied)."""
    outside = _passive(connection)
    with turn():
        inside = _passive(connection)
    return outside, inside


def _passive(connection: sqlite3.Connection) -> tuple[int, int, int]:
    busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(busy), int(frames), int(copied)


def _connect(path: str) -> sqlite3.Connection:
    # mode=rw: a database that is gone (a test's, deleted) is an error here, not a new empty file.
    uri = f"{Path(path).resolve().as_uri()}?mode=rw"
    connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA busy_timeout = 30000")
    return connection


def _after_fork_in_child() -> None:
    # The parent's threads do not exist in a child, and the lock may have been held at the moment of fork().
    global _lock
    _lock = threading.Lock()
    _checkpointers.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
