"""deliveries: a kept delivery in at most 1 KiB, and every port of a host found by its bare name

- The delivery's own copy of its last request (`method`, `url`, `body`) is dropped: its last attempt holds the
  same request (`dispatcher.delivery_details.last_requests`), and the expanded URL was a kept delivery's
  largest value. Downgrade copies each delivery's last attempt back.
- `ix_deliveries_state_created_at` leaves out succeeded deliveries (nearly every kept row): a search for them
  walks `(created_at)` as fast. `ix_deliveries_state_completed_at` keeps only failed ones: retention's
  "succeeded before T" walks the primary key in batches.
- `destination_host` is compared byte by byte (collation "C") on PostgreSQL, so the range that finds every
  port of a host (`tracker.example:` .. `tracker.example;`) is answered by its index. SQLite compares bytes
  already.

Order of a rolling upgrade: this one runs AFTER the new code is started everywhere (the release before it
reads and writes the dropped columns; this release never names them and runs on 0009, which a test checks).
On PostgreSQL it holds an exclusive lock on `deliveries` until it commits, reads too (its first DROP INDEX
takes it and Alembic runs the upgrade in one transaction): workers, the API and search wait while the indexes
rebuild, so on a large table run it in a quiet hour. Dropping the columns is instant; their space is reused
by new rows (VACUUM FULL gives it back to the disk).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 02:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name: (columns, condition before, condition after)
PARTIAL = {
    "ix_deliveries_state_created_at": (["state", "created_at"], None, "state <> 'succeeded'"),
    "ix_deliveries_state_completed_at": (
        ["state", "completed_at"],
        "completed_at IS NOT NULL",
        "state = 'failed'",
    ),
}
HOST_INDEX = ("ix_deliveries_destination_host_created_at", ["destination_host", "created_at"])
HOST_SET = sa.text("destination_host IS NOT NULL")


def upgrade() -> None:
    for name, (columns, _, after) in PARTIAL.items():
        _rebuild(name, columns, after)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("method")
        batch_op.drop_column("url")
        batch_op.drop_column("body")
    if op.get_bind().dialect.name == "postgresql":
        _host_collation("C")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _host_collation(None)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("method", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("url", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("body", sa.Text(), nullable=True))
    op.execute(
        "UPDATE deliveries SET method = a.method, url = a.url, body = a.request_body FROM attempts a"
        " WHERE a.delivery_id = deliveries.id"
        " AND a.number = (SELECT max(b.number) FROM attempts b WHERE b.delivery_id = deliveries.id)"
    )
    for name, (columns, before, _) in PARTIAL.items():
        _rebuild(name, columns, before)


def _rebuild(name: str, columns: list[str], condition: str | None) -> None:
    where = sa.text(condition) if condition else None
    op.drop_index(name, table_name="deliveries")
    op.create_index(name, "deliveries", columns, sqlite_where=where, postgresql_where=where)


def _host_collation(collation: str | None) -> None:
    """The index is rebuilt under the column's new collation (dropped first: its order changes)."""
    name, columns = HOST_INDEX
    op.drop_index(name, table_name="deliveries")
    op.alter_column(
        "deliveries",
        "destination_host",
        type_=sa.String(length=255, collation=collation),
        existing_nullable=True,
    )
    op.create_index(name, "deliveries", columns, postgresql_where=HOST_SET)
