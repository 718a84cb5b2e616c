"""advertiser users: people who sign in to the advertiser portal, each for one advertiser

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 22:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dispatcher.models.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "advertiser_users",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("advertiser_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("created_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["advertiser_id"],
            ["advertisers.id"],
            name=op.f("fk_advertiser_users_advertiser_id_advertisers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advertiser_users")),
        sa.UniqueConstraint("email", name=op.f("uq_advertiser_users_email")),
    )
    with op.batch_alter_table("advertiser_users", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_advertiser_users_advertiser_id"), ["advertiser_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("advertiser_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_advertiser_users_advertiser_id"))
    op.drop_table("advertiser_users")
