"""delivery indexes a reported sale no longer writes: three redundant ones dropped, four made partial

Dropped: `postback_id` and `destination_host` lead longer indexes (`(postback_id, created_at)`, the unique
`(postback_id, transaction_event_id)`, `(destination_host, created_at)`) that answer the same look-ups;
nothing looks deliveries up by `transaction_event_id` alone (a duplicate report counts its deliveries by
`transaction_id`), and neither postbacks (soft-deleted) nor events are deleted.

Partial: the indexes on `destination_host`, `last_error_class`, `last_status_code` and `completed_at` leave
out rows where that column is NULL, as it is in every new delivery until its first attempt. Every query on
them compares the column, which implies NOT NULL, so both databases still use them.

On a large PostgreSQL table the four are rebuilt with the table locked for writes: run it in a quiet hour.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 03:49:17.320544
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = {
    "ix_deliveries_destination_host": "destination_host",
    "ix_deliveries_postback_id": "postback_id",
    "ix_deliveries_transaction_event_id": "transaction_event_id",
}
# name: (columns, the column that must be set)
PARTIAL = {
    "ix_deliveries_destination_host_created_at": (["destination_host", "created_at"], "destination_host"),
    "ix_deliveries_last_error_class_created_at": (["last_error_class", "created_at"], "last_error_class"),
    "ix_deliveries_last_status_code_created_at": (["last_status_code", "created_at"], "last_status_code"),
    "ix_deliveries_state_completed_at": (["state", "completed_at"], "completed_at"),
}


def upgrade() -> None:
    for name in DROPPED:
        op.drop_index(op.f(name), table_name="deliveries")
    for name, (columns, column) in PARTIAL.items():
        condition = sa.text(f"{column} IS NOT NULL")
        op.drop_index(op.f(name), table_name="deliveries")
        op.create_index(op.f(name), "deliveries", columns, sqlite_where=condition, postgresql_where=condition)


def downgrade() -> None:
    for name, (columns, _) in PARTIAL.items():
        op.drop_index(op.f(name), table_name="deliveries")
        op.create_index(op.f(name), "deliveries", columns, unique=False)
    for name, column in DROPPED.items():
        op.create_index(op.f(name), "deliveries", [column], unique=False)
