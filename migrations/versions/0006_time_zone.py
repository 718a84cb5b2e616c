"""time zone of publishers and staff: where the pages show times (stored in UTC whatever it is)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 17:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("publishers", "staff_users")


def upgrade() -> None:
    # Nullable, no default: existing accounts see UTC until they choose. Adding a nullable column rewrites
    # nothing on PostgreSQL.
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("time_zone")
