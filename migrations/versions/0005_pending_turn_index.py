"""deliveries: a partial index for the order rule (an earlier event of the transaction still pending?)

`ix_deliveries_pending_turn` on (transaction_id, postback_id, transaction_event_id) where state is pending:
a claim, the pump and the flusher ask, for each delivery, whether an earlier event of the same transaction is
still pending for the same postback (`workers.claims.in_turn`). Only pending rows are in it, so it stays as
small as the backlog.

On a large PostgreSQL table the index is built with the table locked for writes: run it in a quiet hour.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 13:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_deliveries_pending_turn"
PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.create_index(
        NAME,
        "deliveries",
        ["transaction_id", "postback_id", "transaction_event_id"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="deliveries")
