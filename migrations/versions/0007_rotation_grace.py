"""rotation grace: an advertiser's previous API key and S2S token, accepted until a time

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dispatcher.models.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SECRETS = ("api_key", "s2s_token")


def upgrade() -> None:
    # Nullable, no default: no advertiser has a previous secret until its first rotation with a grace period.
    with op.batch_alter_table("advertisers", schema=None) as batch_op:
        for secret in SECRETS:
            batch_op.add_column(sa.Column(f"previous_{secret}_id", sa.String(length=32), nullable=True))
            batch_op.add_column(sa.Column(f"previous_{secret}_hash", sa.String(length=128), nullable=True))
            batch_op.add_column(
                sa.Column(
                    f"previous_{secret}_until",
                    dispatcher.models.types.UTCDateTime(timezone=True),
                    nullable=True,
                )
            )
            batch_op.create_unique_constraint(
                batch_op.f(f"uq_advertisers_previous_{secret}_id"), [f"previous_{secret}_id"]
            )


def downgrade() -> None:
    with op.batch_alter_table("advertisers", schema=None) as batch_op:
        for secret in reversed(SECRETS):
            batch_op.drop_constraint(batch_op.f(f"uq_advertisers_previous_{secret}_id"), type_="unique")
            for column in ("until", "hash", "id"):
                batch_op.drop_column(f"previous_{secret}_{column}")
