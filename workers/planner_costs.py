"""The worker's PostgreSQL sessions plan its lookups by key as such, however small the tables.

The statements of a delivery job and of a flush read or write a batch of rows by primary key (tens of
deliveries, their transactions and events). With PostgreSQL's default `random_page_cost` of 4, which prices
each index probe as a read from a spinning disk, the planner reads whole tables of up to tens of thousands of
rows instead: a new installation, a network's first months, and every bench.delivery run. Measured on a
backlog of 10,000 sales never analyzed (EXPLAIN ANALYZE): a job's load of 50 deliveries read all three tables
(2.8 ms), and its claim all 10,000 deliveries (2.8 ms); with 1.1, PostgreSQL's advice for data in memory or on
SSDs, both went by primary key (0.23 and 1.8 ms). In bench.delivery's pipeline (5,000 sales, 4 runs each way)
the database's CPU a delivery fell from 0.19 ms to 0.15. The worker's other jobs (bulk replay, backfill, bulk
status changes) plan with it too; their figures were not measured.

So each session of a worker sets 1.1 when the server's page costs are both PostgreSQL's built-in defaults:
values a database administrator chose (in postgresql.conf, for the database or the role, in the connection
URL's `options`) are kept. Only the worker's sessions: the web app and the pump plan with the server's
settings. A session setting: behind a pooler in transaction mode (PgBouncer) it may not stay with the worker's
connections; set it for the worker's role there (`ALTER ROLE ... SET random_page_cost = 1.1`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from dispatcher.db import Database

RANDOM_PAGE_COST = 1.1

# One round trip: set unless either page cost was chosen for the server (the SELECT then returns no row).
_SET_UNLESS_CHOSEN = f"""
SELECT set_config('random_page_cost', '{RANDOM_PAGE_COST}', false)
WHERE NOT EXISTS (
    SELECT FROM pg_settings WHERE name IN ('random_page_cost', 'seq_page_cost') AND source <> 'default'
)
"""


def worker_database(url: str) -> Database:
    """The database of a worker process: on PostgreSQL its sessions plan with RANDOM_PAGE_COST (see above)."""
    database = Database(url)
    if database.engine.dialect.name == "postgresql":
        # Before any connection is made: the event is for connections opened from now on.
        event.listen(database.engine, "connect", _on_connect)
    return database


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute(_SET_UNLESS_CHOSEN)
    dbapi_connection.commit()  # a setting made in a transaction is undone by its rollback (the pool's reset)
