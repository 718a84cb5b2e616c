"""The hot paths' `Link` (dispatcher.db): ids of inserted rows, values converted through the columns' types
(and conversions remembered only where that cannot change what is stored), on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import JSON, Column, DateTime, MetaData, Numeric, String, Table, bindparam, or_, select

from dispatcher import db as db_module
from dispatcher.db import Database, Link
from dispatcher.models.types import BigId, Money, UTCDateTime
from tests.conftest import exit_code_of

metadata = MetaData()
probes = Table(
    "link_probes",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("at", UTCDateTime),
    Column("amount", Money),
    Column("note", String(20)),
    Column("tags", JSON),
    Column("rate", Numeric(12, 4)),  # the same Python values as `amount`, another conversion
    Column("local_at", DateTime(timezone=True)),  # the same as `at`, another conversion
    Column("parent", BigId),  # an id known only after an earlier insert: bound later (`Link.stage`)
)
_BY_ID = select(probes).where(probes.c.id == bindparam("id"))
_BY_NOTE_OR_ID = select(probes.c.id).where(
    or_(
        probes.c.note == bindparam("value"),
        probes.c.id == bindparam("number"),
        probes.c.note == bindparam("value"),
    )
)
PARIS = timezone(timedelta(hours=2))


@pytest.fixture
def link(database: Database) -> Iterator[Link]:
    metadata.create_all(database.engine)
    with database.link() as link:
        yield link
        link.commit()


def test_insert_answers_each_new_rows_id(link: Link) -> None:
    moment = datetime(2026, 11, 20, 14, 30, 5, 123456, tzinfo=PARIS)

    ids = [link.insert(probes, {"at": moment, "amount": Decimal(n), "note": f"n{n}"}) for n in range(3)]

    assert len(set(ids)) == 3
    for n, new_id in enumerate(ids):
        row = link.first(_BY_ID, {"id": new_id})
        assert row is not None
        assert (row.note, row.amount, row.at) == (f"n{n}", Decimal(n), moment.astimezone(UTC))
        assert row.at.tzinfo is UTC


def test_the_same_moment_bound_in_several_statements_is_stored_alike(link: Link) -> None:
    moment = datetime(2026, 11, 20, 23, 59, 59, tzinfo=PARIS)
    amount = Decimal("19.99")

    ids = [link.insert(probes, {"at": moment, "amount": amount}) for _ in range(3)]

    rows = [link.first(_BY_ID, {"id": new_id}) for new_id in ids]
    assert {(row.at, row.amount) for row in rows} == {(moment.astimezone(UTC), amount)}


def test_values_made_one_after_another_are_each_stored(link: Link) -> None:
    """Conversions are remembered by the value's identity: a new value at a freed address (CPython reuses
    them at once) must not be taken for the previous one."""
    start = datetime(2026, 1, 1, tzinfo=UTC)

    ids = [link.insert(probes, {"at": start + timedelta(seconds=n), "amount": Decimal(n)}) for n in range(50)]

    rows = [link.first(_BY_ID, {"id": new_id}) for new_id in ids]
    assert [(row.at, row.amount) for row in rows] == [
        (start + timedelta(seconds=n), Decimal(n)) for n in range(50)
    ]


def test_a_mutable_value_is_converted_as_it_is_at_each_statement(link: Link) -> None:
    tags = ["sale"]
    first = link.insert(probes, {"tags": tags})
    tags.append("lead")
    second = link.insert(probes, {"tags": tags})

    assert [link.first(_BY_ID, {"id": new_id}).tags for new_id in (first, second)] == [  # type: ignore[union-attr]
        ["sale"],
        ["sale", "lead"],
    ]


def test_a_refused_value_is_refused_every_time(link: Link) -> None:
    naive = datetime(2026, 11, 20, 12, 0)
    for _ in range(2):
        with pytest.raises(ValueError, match="naive datetime"):
            link.insert(probes, {"at": naive})
    for _ in range(2):
        with pytest.raises(ValueError, match="more than 4 decimals"):
            link.insert(probes, {"amount": Decimal("1.00001")})


def test_a_parameter_named_twice_is_bound_at_each_place(link: Link) -> None:
    wanted = link.insert(probes, {"note": "wanted"})
    link.insert(probes, {"note": "other"})

    found = link.rows(_BY_NOTE_OR_ID, {"value": "wanted", "number": -1})

    assert [row.id for row in found] == [wanted]


def test_one_value_bound_to_columns_of_different_types_is_converted_for_each(link: Link) -> None:
    """A remembered conversion belongs to a type as well as a value: the same Decimal into Money and into a
    plain Numeric, the same datetime into UTCDateTime and into a timezone-aware DateTime, each stored as its
    type stores it, as a fresh value (a copy: nothing remembered) of each type would be."""
    moment = datetime(2026, 11, 20, 23, 59, 59, tzinfo=PARIS)
    amount = Decimal("7.5")
    shared = {"at": moment, "local_at": moment, "amount": amount, "rate": amount}
    fresh = {
        "at": moment.replace(),
        "local_at": moment.replace(),
        "amount": Decimal("7.5"),
        "rate": Decimal("7.5"),
    }
    assert all(fresh[name] is not shared[name] for name in shared)

    ids = [link.insert(probes, shared), link.insert(probes, shared), link.insert(probes, fresh)]
    # As stored, without the types' result conversions.
    plain = Table("link_probes", MetaData(), *(Column(name) for name in ("id", *shared)))
    by_id = select(*plain.c[1:]).where(plain.c.id == bindparam("id"))
    first, second, reference = (tuple(link.first(by_id, {"id": n}) or ()) for n in ids)

    assert first == second == reference
    if link.sqlite:  # it keeps UTCDateTime's UTC text and DateTime's local text: two conversions indeed
        assert first[0] != first[1]


def test_a_staged_insert_stores_its_values_converted_and_its_later_ids_as_given(link: Link) -> None:
    moment = datetime(2026, 11, 20, 23, 59, 59, tzinfo=PARIS)
    parent = link.insert(probes, {"note": "parent"})
    staged = link.stage(probes, {"at": moment, "amount": Decimal("2.50"), "note": "child"}, ("parent",))

    child = link.insert_staged(staged, parent)

    row = link.first(_BY_ID, {"id": child})
    assert row is not None
    assert (row.at, row.amount, row.note, row.parent) == (
        moment.astimezone(UTC),
        Decimal("2.50"),
        "child",
        parent,
    )
    assert child != parent


def test_a_staged_insert_without_later_values_is_a_plain_insert(link: Link) -> None:
    first = link.insert_staged(link.stage(probes, {"note": "a"}))
    second = link.insert_staged(link.stage(probes, {"note": "b"}))

    assert [link.first(_BY_ID, {"id": n}).note for n in (first, second)] == ["a", "b"]  # type: ignore[union-attr]


def test_a_staged_value_is_refused_when_staged_not_when_run(link: Link) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        link.stage(probes, {"at": datetime(2026, 11, 20, 12, 0)})


def test_only_columns_that_take_values_as_they_are_can_be_bound_later(link: Link) -> None:
    """A later value is bound without conversion: an amount or a moment there would be stored unconverted."""
    for name in ("amount", "at"):
        with pytest.raises(ValueError, match=f"{name} cannot be bound later"):
            link.stage(probes, {"note": "x"}, (name,))
    with pytest.raises(ValueError, match="nothing cannot be bound later"):
        link.stage(probes, {"note": "x"}, ("nothing",))


def test_on_sqlite_a_thread_keeps_its_connection_for_its_links_and_others_get_their_own(
    database: Database,
) -> None:
    metadata.create_all(database.engine)
    with database.link() as first:
        mine = first._driver
    with database.link() as second:
        again = second._driver
    theirs: list[Any] = []

    def other_thread() -> None:
        with database.link() as link:
            theirs.append(link._driver)

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()

    if database.engine.dialect.name == "sqlite":
        assert again is mine and theirs[0] is not mine
    assert database.engine.pool.checkedout() == 0  # SQLite's are out of the pool: it is never short of one


def test_a_link_closed_in_a_write_transaction_leaves_nothing_written_and_the_next_link_works(
    database: Database,
) -> None:
    metadata.create_all(database.engine)
    with database.link() as link:
        link.begin()
        link.insert(probes, {"note": "uncommitted"})
    with database.link() as link:
        link.begin()  # no transaction left open on the connection
        link.insert(probes, {"note": "committed"})
        link.commit()
        notes = [row.note for row in link.rows(select(probes.c.note), {})]
        link.commit()

    assert notes == ["committed"]


def test_dispose_closes_the_kept_connections_and_a_later_link_opens_another(database: Database) -> None:
    metadata.create_all(database.engine)
    with database.link() as link:
        before = link._driver
    database.dispose()

    with database.link() as link:
        link.insert(probes, {"note": "after"})
        link.commit()
        after = link._driver

    if database.engine.dialect.name == "sqlite":
        assert after is not before
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            before.execute("SELECT 1")


@pytest.mark.processes
def test_a_forked_child_opens_its_own_sqlite_connection(sqlite_url: str) -> None:
    """Never its parent's (SQLite forbids using one across fork()). A pool's PostgreSQL connections are
    another matter: a forked process disposes of its inherited pool (gunicorn forks before the app)."""
    database = Database(sqlite_url)
    metadata.create_all(database.engine)
    with database.link() as link:
        parents = link._driver
    child = os.fork()
    if child == 0:
        status = 1
        try:
            with database.link() as link:
                link.insert(probes, {"note": "child"})
                link.commit()
                status = 0 if link._driver is not parents else 2
        finally:
            os._exit(status)
    assert exit_code_of(child, "its first Link") == 0
    assert stored_notes(database) == ["child"]
    database.dispose()


def stored_notes(database: Database) -> list[str]:
    """The probes' notes, sorted, read through a Link of their own."""
    with database.link() as link:
        notes = sorted(row.note for row in link.rows(select(probes.c.note), {}))
        link.commit()
    return notes


def _open_files(path: str) -> int:
    """This process's file descriptors on `path` (Linux)."""
    found = 0
    for entry in os.scandir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            found += os.readlink(entry.path) == path
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_a_threads_kept_connection_is_closed_when_the_thread_ends(sqlite_url: str) -> None:
    """Servers that start a thread per request (the development server) would otherwise leave one open
    connection behind per request."""
    database = Database(sqlite_url)
    metadata.create_all(database.engine)
    path = os.path.abspath(database.engine.url.database or "")
    before = _open_files(path)

    def request() -> None:
        with database.link() as link:
            link.insert(probes, {"note": "from a thread"})
            link.commit()

    for _ in range(5):
        worker = threading.Thread(target=request)
        worker.start()
        worker.join()
        assert _open_files(path) <= before  # the pool's own may have been the one the thread kept
    database.dispose()


def test_a_link_inside_a_link_leaves_the_outer_ones_transaction_alone(database: Database) -> None:
    metadata.create_all(database.engine)
    with database.link() as outer:
        outer.begin()
        outer.insert(probes, {"note": "outer"})
        with database.link() as inner:  # on SQLite not the thread's kept connection: the outer Link has it
            assert inner._driver is not outer._driver
        outer.commit()
    assert stored_notes(database) == ["outer"]


def test_dispose_during_a_link_leaves_that_link_its_connection(database: Database) -> None:
    metadata.create_all(database.engine)
    with database.link() as link:
        database.dispose()
        link.insert(probes, {"note": "still open"})
        link.commit()
        used = link._driver
    with database.link() as link:
        assert link._driver is not used or database.engine.dialect.name != "sqlite"
        assert [row.note for row in link.rows(select(probes.c.note), {})] == ["still open"]
        link.commit()
    if database.engine.dialect.name == "sqlite":
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            used.execute("SELECT 1")  # closed by its thread's next Link


@pytest.mark.processes
def test_a_forked_child_leaves_the_parents_threads_connections_open(sqlite_url: str) -> None:
    """In a child, fork() drops the other threads' locals at once; their connections are the parent's, and
    closing them there could roll back or checkpoint under the parent's feet: they are let go, not closed."""
    database = Database(sqlite_url)
    metadata.create_all(database.engine)
    holding, release = threading.Event(), threading.Event()

    def other_thread() -> None:
        with database.link() as link:
            link.insert(probes, {"note": "other thread"})
            link.commit()
        holding.set()
        release.wait(10)
        with database.link() as link:  # its kept connection, still open after the child has gone
            link.insert(probes, {"note": "other thread, later"})
            link.commit()

    worker = threading.Thread(target=other_thread)
    worker.start()
    assert holding.wait(10)
    [theirs] = [each.pooled for each in database._kept_all]  # not the _Kept: it must go with its thread
    child = os.fork()
    if child == 0:
        status = 1
        try:
            with database.link() as link:
                link.insert(probes, {"note": "child"})
                link.commit()
            status = 0 if any(pooled is theirs for pooled in db_module._inherited) else 2
        finally:
            os._exit(status)
    code = exit_code_of(child, "its first Link")
    release.set()
    worker.join(10)

    assert code == 0
    assert stored_notes(database) == ["child", "other thread", "other thread, later"]
    database.dispose()
