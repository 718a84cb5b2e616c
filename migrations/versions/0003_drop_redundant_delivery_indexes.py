"""drop redundant delivery indexes: each reported sale wrote them, no query needed them

`postback_id` and `destination_host` lead longer indexes (`(postback_id, created_at)`, the unique
`(postback_id, transaction_event_id)`, `(destination_host, created_at)`) that answer the same look-ups;
nothing looks deliveries up by `transaction_event_id` alone (a duplicate report counts its deliveries by
`transaction_id`), and neither postbacks (soft-deleted) nor events are deleted.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 03:49:17.320544
"""

from __future__ import annotations

from collections.abc import Sequence

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


def upgrade() -> None:
    for name in DROPPED:
        op.drop_index(op.f(name), table_name="deliveries")


def downgrade() -> None:
    for name, column in DROPPED.items():
        op.create_index(op.f(name), "deliveries", [column], unique=False)
