"""session epoch: logging out (or a password change) ends every signed-in session of the account

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 03:02:49.535222
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("publishers", "staff_users")


def upgrade() -> None:
    # The server default fills existing rows; their old cookies carry no epoch and sign in again once.
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("session_epoch")
