"""traffic sources can be deactivated: their new clicks are refused

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 23:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every existing source is active. A constant default: PostgreSQL 11+ adds the column without rewriting
    # the table; SQLite's batch mode copies it (development only).
    with op.batch_alter_table("traffic_sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("traffic_sources", schema=None) as batch_op:
        batch_op.drop_column("active")
