"""WAL checkpoints by a thread of the process, mostly outside SQLite's write turn (`ledger.checkpoints`).

What a checkpoint does is seen in the database file alone: a copy of it without its WAL holds only the rows
checkpointed so far.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from dispatcher.db import get_db
from dispatcher.ledger import checkpoints, gate
from tests.conftest import exit_code_of
from tests.dispatcher.ledger.conftest import Network

# A PostgreSQL has no WAL file of ours to checkpoint.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def database_path(network: Network) -> str:
    database = get_db(network.app).engine.url.database
    assert database is not None
    return os.path.abspath(database)


def rows_in_the_file_alone(path: str, table: str, scratch: Path) -> int:
    """The rows of `table` in the database file without its WAL: those checkpointed into it (none while the
    table itself is only in the WAL)."""
    copy = scratch / f"copy-{time.monotonic_ns()}.db"
    shutil.copyfile(path, copy)
    connection = sqlite3.connect(copy)
    try:
        if not connection.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchall():
            return 0
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        connection.close()


def eventually(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout} s for {what}")
        time.sleep(0.01)


def sale(network: Network, click_id: str, order: str) -> None:
    answer = network.report({"click_id": click_id, "order_number": order, "sale_amount": "5.00"})
    assert answer.status_code == 201, answer.json


@sqlite_only
def test_every_nth_write_turn_has_the_wal_copied_into_the_database_file(
    network: Network, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(checkpoints, "EVERY_TURNS", 2)
    path = database_path(network)
    clicks = [network.click(), network.click()]  # two turns: a checkpoint
    eventually(lambda: checkpoints._checkpointers[path].done == 1, "the first checkpoint")

    sale(network, clicks[0], "C-1")  # the third turn: none
    time.sleep(0.2)
    assert checkpoints._checkpointers[path].done == 1
    assert rows_in_the_file_alone(path, "transactions", tmp_path) == 0

    sale(network, clicks[1], "C-2")  # the fourth
    eventually(lambda: checkpoints._checkpointers[path].done == 2, "the second checkpoint")
    assert rows_in_the_file_alone(path, "transactions", tmp_path) == 2
    assert rows_in_the_file_alone(path, "clicks", tmp_path) == 2


@sqlite_only
def test_the_copy_is_made_while_another_writer_holds_the_turn_and_finished_in_the_turn(
    network: Network, tmp_path: Path
) -> None:
    path = database_path(network)
    clicks = [network.click() for _ in range(3)]
    for n, click_id in enumerate(clicks):
        sale(network, click_id, f"T-{n}")
    connection = checkpoints._connect(path)
    results: list[tuple[tuple[int, int, int], ...]] = []
    with gate.path_turn(path):  # a writer is in its turn, for as long as the copy takes
        worker = threading.Thread(
            target=lambda: results.append(checkpoints.checkpoint(connection, partial(gate.path_turn, path)))
        )
        worker.start()
        eventually(lambda: rows_in_the_file_alone(path, "transactions", tmp_path) == 3, "the copy")
        time.sleep(0.1)
        assert worker.is_alive() and not results  # its second step waits for the turn
    worker.join(10)
    connection.close()

    [(outside, inside)] = results
    busy, frames, copied = outside
    assert busy == 0 and frames == copied > 0  # everything, before the turn
    assert inside == (0, frames, frames)  # nothing more was written meanwhile


def test_a_database_that_is_gone_is_not_made_again_and_the_failure_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setattr(checkpoints, "EVERY_TURNS", 1)
    path = str(tmp_path / "gone.db")
    with caplog.at_level(logging.WARNING, logger=checkpoints.__name__):
        checkpoints.turn_taken(path, partial(gate.path_turn, path), 1)
        eventually(lambda: "WAL checkpoint of" in caplog.text, "the warning")

    assert not os.path.exists(path)
    assert checkpoints._checkpointers[path].done == 0


@sqlite_only
def test_an_idle_thread_ends_and_the_next_checkpoint_starts_another(
    network: Network, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(checkpoints, "EVERY_TURNS", 1)
    monkeypatch.setattr(checkpoints, "IDLE_EXIT_S", 0.2)
    path = database_path(network)
    network.click()
    checkpointer = checkpoints._checkpointers[path]
    eventually(lambda: checkpointer.done == 1, "the first checkpoint")
    eventually(lambda: checkpointer._thread is None, "the idle thread's end")

    network.click()

    eventually(lambda: checkpointer.done == 2, "a checkpoint by a new thread")
    assert rows_in_the_file_alone(path, "clicks", tmp_path) == 2


@pytest.mark.processes
@sqlite_only
def test_a_child_forked_while_the_registry_was_locked_checkpoints_on_its_own(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "EVERY_TURNS", 1)
    path = database_path(network)
    with checkpoints._lock:  # as if a request thread of this process held it at the moment of fork()
        child = os.fork()
        if child == 0:  # the child: no thread of the parent's, and the lock free
            status = 1
            try:
                checkpoints.turn_taken(path, partial(gate.path_turn, path), 1)
                checkpointer = checkpoints._checkpointers[path]
                deadline = time.monotonic() + 10
                while checkpointer.done == 0 and time.monotonic() < deadline:
                    time.sleep(0.01)
                status = 0 if checkpointer.done == 1 else 1
            finally:
                os._exit(status)
    assert exit_code_of(child, "the checkpoints' lock") == 0


@pytest.mark.processes
@sqlite_only
def test_turns_are_counted_across_processes(network: Network) -> None:
    """So that every EVERY_TURNS-th turn of the database checkpoints, however many processes share it."""
    path = database_path(network)
    network.click()
    network.click()  # turns 1 and 2, in this process
    child = os.fork()
    if child == 0:
        status = 1
        try:
            with gate.path_turn(path) as descriptor:
                status = gate._counted(descriptor)
        finally:
            os._exit(status)
    assert exit_code_of(child, "the write turn") == 3
    with gate.path_turn(path) as descriptor:
        assert gate._counted(descriptor) == 4


@sqlite_only
def test_a_checkpoint_that_fails_leaves_the_thread_to_do_the_next(
    network: Network, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setattr(checkpoints, "EVERY_TURNS", 1)
    path = database_path(network)
    calls: list[int] = []

    def turn_failing_once() -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OSError(24, "Too many open files")
        return gate.path_turn(path)

    with caplog.at_level(logging.WARNING, logger=checkpoints.__name__):
        checkpoints.turn_taken(path, turn_failing_once, 1)
        eventually(lambda: "Too many open files" in caplog.text, "the warning")
    checkpointer = checkpoints._checkpointers[path]
    assert checkpointer.done == 0

    network.click()  # the click's own turn wakes the same checkpointer: its thread is still there

    eventually(lambda: checkpointer.done == 1, "the next checkpoint")
    assert rows_in_the_file_alone(path, "clicks", tmp_path) == 1
