"""The worker's PostgreSQL sessions plan its lookups by key as such, however small the tables.

Every statement of a job and of a flush reads or writes a batch of rows by primary key (tens of deliveries,
their transactions and events). With PostgreSQL's default `random_page_cost` of 4, which prices each index
probe as a read from a spinning disk, the planner reads whole tables of up to tens of thousands of rows
instead: a new installation, a network's first months, and every bench.delivery run. Measured on a backlog of
10,000 sales never analyzed (EXPLAIN ANALYZE): a job's load of 50 deliveries read all three tables (2.8 ms),
and its claim all 10,000 deliveries (2.8 ms); with 1.1, PostgreSQL's advice for data in memory or on SSDs,
both went by primary key (0.23 and 1.8 ms). In bench.delivery's fast run the database's CPU a delivery fell
from 0.19 ms to 0.15.

So each session of a worker sets 1.1, unless the server's value is not PostgreSQL's built-in default: one a
database administrator chose (in postgresql.conf, for the database or the role, in the connection URL's
`options`) is kept. Only the worker's sessions: the web app's pages are planned with the server's settings.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event

from dispatcher.db import Database

log = logging.getLogger(__name__)

RANDOM_PAGE_COST = 1.1


def plan_for_key_lookups(database: Database) -> None:
    """Sessions this database opens from now on use RANDOM_PAGE_COST (see the module doc); not on SQLite."""
    if database.engine.dialect.name == "postgresql":
        event.listen(database.engine, "connect", _on_connect)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SELECT source FROM pg_settings WHERE name = 'random_page_cost'")
        row = cursor.fetchone()
        if row is not None and row[0] == "default":
            cursor.execute(f"SET random_page_cost = {RANDOM_PAGE_COST}")
    dbapi_connection.commit()  # a SET is undone if its transaction is rolled back (the pool's reset does so)
