"""transactions: the business key's unique index leads with order_number; ix_transactions_order_number dropped

`uq_transactions_program_id_order_number_event_type` becomes
`uq_transactions_order_number_program_id_event_type`: the same three columns, so the same rows are
duplicates. Led by order_number, it answers look-ups by order number alone (support search, a batch's earlier
reports), which `ix_transactions_order_number` did: that one is dropped, so a reported sale writes one index
fewer.

SQLite cannot alter a table's constraints: the table is rebuilt (copied). On PostgreSQL, `ADD CONSTRAINT ...
UNIQUE` holds an ACCESS EXCLUSIVE lock on transactions while the index is built, until the migration commits:
reads wait too (click attribution, the portal, support search). Either way, run it in a quiet hour on a large
table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 05:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KEY = ("uq_transactions_program_id_order_number_event_type", ["program_id", "order_number", "event_type"])
NEW_KEY = ("uq_transactions_order_number_program_id_event_type", ["order_number", "program_id", "event_type"])
ORDER_NUMBER_INDEX = "ix_transactions_order_number"


def upgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        # The new key before the old goes: on PostgreSQL duplicates stay refused throughout.
        batch_op.create_unique_constraint(batch_op.f(NEW_KEY[0]), NEW_KEY[1])
        batch_op.drop_constraint(batch_op.f(OLD_KEY[0]), type_="unique")
        batch_op.drop_index(batch_op.f(ORDER_NUMBER_INDEX))


def downgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f(ORDER_NUMBER_INDEX), ["order_number"], unique=False)
        batch_op.create_unique_constraint(batch_op.f(OLD_KEY[0]), OLD_KEY[1])
        batch_op.drop_constraint(batch_op.f(NEW_KEY[0]), type_="unique")
