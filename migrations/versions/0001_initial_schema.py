"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 01:04:49.062726
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import dispatcher.models.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "advertisers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("api_key_id", sa.String(length=32), nullable=True),
        sa.Column("api_key_hash", sa.String(length=128), nullable=True),
        sa.Column("s2s_token_id", sa.String(length=32), nullable=True),
        sa.Column("s2s_token_hash", sa.String(length=128), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advertisers")),
        sa.UniqueConstraint("api_key_id", name=op.f("uq_advertisers_api_key_id")),
        sa.UniqueConstraint("s2s_token_id", name=op.f("uq_advertisers_s2s_token_id")),
    )
    op.create_table(
        "demo_receipts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column(
            "query",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("received_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_demo_receipts")),
    )
    op.create_table(
        "publishers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("api_token_id", sa.String(length=32), nullable=True),
        sa.Column("api_token_hash", sa.String(length=128), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publishers")),
        sa.UniqueConstraint("api_token_id", name=op.f("uq_publishers_api_token_id")),
        sa.UniqueConstraint("email", name=op.f("uq_publishers_email")),
    )
    op.create_table(
        "staff_users",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("api_token_id", sa.String(length=32), nullable=True),
        sa.Column("api_token_hash", sa.String(length=128), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('support', 'admin')", name=op.f("ck_staff_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("api_token_id", name=op.f("uq_staff_users_api_token_id")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_users_email")),
    )
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("staff_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_user_id"],
            ["staff_users.id"],
            name=op.f("fk_audit_entries_staff_user_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entries_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_entries_target_type_target_id"), ["target_type", "target_id"], unique=False
        )

    op.create_table(
        "postbacks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("publisher_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url_template", sa.Text(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("body_template", sa.Text(), nullable=True),
        sa.Column("content_type", sa.String(length=100), nullable=True),
        sa.Column(
            "headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "events",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "statuses",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "status_map",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("success_body_contains", sa.String(length=200), nullable=True),
        sa.Column("signing_secret", sa.String(length=128), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("paused_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failing_since", dispatcher.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("method IN ('GET', 'POST')", name=op.f("ck_postbacks_method")),
        sa.ForeignKeyConstraint(
            ["publisher_id"],
            ["publishers.id"],
            name=op.f("fk_postbacks_publisher_id_publishers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_postbacks")),
    )
    with op.batch_alter_table("postbacks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_postbacks_publisher_id"), ["publisher_id"], unique=False)

    op.create_table(
        "programs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("advertiser_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("landing_url", sa.Text(), nullable=False),
        sa.Column("commission_type", sa.String(length=16), nullable=False),
        sa.Column("commission_value", dispatcher.models.types.Money(precision=18, scale=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("allow_clickless", sa.Boolean(), nullable=False),
        sa.Column("allow_advertiser_commission", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "commission_type <> 'percent' OR CAST(commission_value AS NUMERIC) <= 100",
            name=op.f("ck_programs_percent_at_most_100"),
        ),
        sa.CheckConstraint(
            "commission_type IN ('percent', 'flat')", name=op.f("ck_programs_commission_type")
        ),
        sa.CheckConstraint(
            "CAST(commission_value AS NUMERIC) >= 0", name=op.f("ck_programs_commission_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["advertiser_id"],
            ["advertisers.id"],
            name=op.f("fk_programs_advertiser_id_advertisers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programs")),
    )
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_programs_advertiser_id"), ["advertiser_id"], unique=False)

    op.create_table(
        "traffic_sources",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("publisher_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["publisher_id"],
            ["publishers.id"],
            name=op.f("fk_traffic_sources_publisher_id_publishers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_traffic_sources")),
        sa.UniqueConstraint("publisher_id", "name", name=op.f("uq_traffic_sources_publisher_id_name")),
    )
    with op.batch_alter_table("traffic_sources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_traffic_sources_publisher_id"), ["publisher_id"], unique=False)

    op.create_table(
        "clicks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("click_id", sa.String(length=32), nullable=False),
        sa.Column("program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("publisher_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("traffic_source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("fobs", sa.String(length=255), nullable=True),
        sa.Column("fobs2", sa.String(length=255), nullable=True),
        sa.Column("fobs3", sa.String(length=255), nullable=True),
        sa.Column("fobs4", sa.String(length=255), nullable=True),
        sa.Column("fobs5", sa.String(length=255), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("created_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_clicks_program_id_programs"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["publisher_id"],
            ["publishers.id"],
            name=op.f("fk_clicks_publisher_id_publishers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f("fk_clicks_traffic_source_id_traffic_sources"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clicks")),
        sa.UniqueConstraint("click_id", name=op.f("uq_clicks_click_id")),
    )
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clicks_fobs"), ["fobs"], unique=False)
        batch_op.create_index(batch_op.f("ix_clicks_program_id"), ["program_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_clicks_publisher_id_created_at"), ["publisher_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_clicks_traffic_source_id"), ["traffic_source_id"], unique=False)

    op.create_table(
        "postback_programs",
        sa.Column("postback_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["postback_id"],
            ["postbacks.id"],
            name=op.f("fk_postback_programs_postback_id_postbacks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_postback_programs_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("postback_id", "program_id", name=op.f("pk_postback_programs")),
    )
    op.create_table(
        "postback_traffic_sources",
        sa.Column("postback_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("traffic_source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["postback_id"],
            ["postbacks.id"],
            name=op.f("fk_postback_traffic_sources_postback_id_postbacks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f("fk_postback_traffic_sources_traffic_source_id_traffic_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("postback_id", "traffic_source_id", name=op.f("pk_postback_traffic_sources")),
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sales_id", sa.String(length=32), nullable=False),
        sa.Column("program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("click_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("publisher_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("traffic_source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("order_number", sa.String(length=255), nullable=False),
        sa.Column("sale_amount", dispatcher.models.types.Money(precision=18, scale=4), nullable=False),
        sa.Column("commission", dispatcher.models.types.Money(precision=18, scale=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("event_type", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("event_time", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "channel IN ('api', 's2s', 'pixel', 'csv', 'staff')", name=op.f("ck_transactions_channel")
        ),
        sa.CheckConstraint("event_type IN ('sale', 'lead')", name=op.f("ck_transactions_event_type")),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'declined', 'reversed')", name=op.f("ck_transactions_status")
        ),
        sa.CheckConstraint(
            "CAST(commission AS NUMERIC) >= 0", name=op.f("ck_transactions_commission_not_negative")
        ),
        sa.CheckConstraint(
            "CAST(sale_amount AS NUMERIC) >= 0", name=op.f("ck_transactions_sale_amount_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["click_pk"], ["clicks.id"], name=op.f("fk_transactions_click_pk_clicks"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_transactions_program_id_programs"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["publisher_id"],
            ["publishers.id"],
            name=op.f("fk_transactions_publisher_id_publishers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f("fk_transactions_traffic_source_id_traffic_sources"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint(
            "program_id",
            "order_number",
            "event_type",
            name=op.f("uq_transactions_program_id_order_number_event_type"),
        ),
        sa.UniqueConstraint("sales_id", name=op.f("uq_transactions_sales_id")),
    )
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transactions_click_pk"), ["click_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_transactions_order_number"), ["order_number"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_transactions_program_id_created_at"), ["program_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_transactions_publisher_id_created_at"),
            ["publisher_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "transaction_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sale_amount", dispatcher.models.types.Money(precision=18, scale=4), nullable=False),
        sa.Column("commission", dispatcher.models.types.Money(precision=18, scale=4), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("occurred_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "channel IN ('api', 's2s', 'pixel', 'csv', 'staff')", name=op.f("ck_transaction_events_channel")
        ),
        sa.CheckConstraint(
            "kind IN ('created', 'approved', 'declined', 'reversed', 'adjusted')",
            name=op.f("ck_transaction_events_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'declined', 'reversed')",
            name=op.f("ck_transaction_events_status"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_transaction_events_transaction_id_transactions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transaction_events")),
    )
    with op.batch_alter_table("transaction_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_transaction_events_transaction_id"), ["transaction_id"], unique=False
        )

    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("postback_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "transaction_event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("publisher_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("queued_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("replayed_after_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_expires_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("leased_by", sa.String(length=100), nullable=True),
        sa.Column("method", sa.String(length=8), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("destination_host", sa.String(length=255), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error_class", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'succeeded', 'failed')", name=op.f("ck_deliveries_state")),
        sa.CheckConstraint("attempt_count >= 0", name=op.f("ck_deliveries_attempt_count_not_negative")),
        sa.ForeignKeyConstraint(
            ["postback_id"],
            ["postbacks.id"],
            name=op.f("fk_deliveries_postback_id_postbacks"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["publisher_id"],
            ["publishers.id"],
            name=op.f("fk_deliveries_publisher_id_publishers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["transaction_event_id"],
            ["transaction_events.id"],
            name=op.f("fk_deliveries_transaction_event_id_transaction_events"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_deliveries_transaction_id_transactions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint(
            "postback_id", "transaction_event_id", name=op.f("uq_deliveries_postback_id_transaction_event_id")
        ),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_deliveries_destination_host"), ["destination_host"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_deliveries_destination_host_created_at"),
            ["destination_host", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_deliveries_last_error_class_created_at"),
            ["last_error_class", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_deliveries_last_status_code_created_at"),
            ["last_status_code", "created_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_deliveries_postback_id"), ["postback_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_deliveries_postback_id_created_at"), ["postback_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_deliveries_publisher_id_created_at"), ["publisher_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_deliveries_state_completed_at"), ["state", "completed_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_deliveries_state_created_at"), ["state", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_deliveries_state_next_attempt_at"), ["state", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_deliveries_transaction_event_id"), ["transaction_event_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_deliveries_transaction_id"), ["transaction_id"], unique=False)

    op.create_table(
        "attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("delivery_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("started_at", dispatcher.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column(
            "request_headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("request_body", sa.Text(), nullable=True),
        sa.Column("resolved_ip", sa.String(length=45), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column(
            "response_headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.Column("error_class", sa.String(length=32), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('sending', 'succeeded', 'retry', 'failed')", name=op.f("ck_attempts_outcome")
        ),
        sa.CheckConstraint("number >= 1", name=op.f("ck_attempts_number_positive")),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_attempts_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
        sa.UniqueConstraint("delivery_id", "number", name=op.f("uq_attempts_delivery_id_number")),
    )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attempts_started_at"), ["started_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attempts_started_at"))

    op.drop_table("attempts")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_transaction_id"))
        batch_op.drop_index(batch_op.f("ix_deliveries_transaction_event_id"))
        batch_op.drop_index(batch_op.f("ix_deliveries_state_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_deliveries_state_created_at"))
        batch_op.drop_index(batch_op.f("ix_deliveries_state_completed_at"))
        batch_op.drop_index(batch_op.f("ix_deliveries_publisher_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_deliveries_postback_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_deliveries_postback_id"))
        batch_op.drop_index(batch_op.f("ix_deliveries_last_status_code_created_at"))
        batch_op.drop_index(batch_op.f("ix_deliveries_last_error_class_created_at"))
        batch_op.drop_index(batch_op.f("ix_deliveries_destination_host_created_at"))
        batch_op.drop_index(batch_op.f("ix_deliveries_destination_host"))
        batch_op.drop_index(batch_op.f("ix_deliveries_created_at"))

    op.drop_table("deliveries")
    with op.batch_alter_table("transaction_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transaction_events_transaction_id"))

    op.drop_table("transaction_events")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transactions_publisher_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_transactions_program_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_transactions_order_number"))
        batch_op.drop_index(batch_op.f("ix_transactions_click_pk"))

    op.drop_table("transactions")
    op.drop_table("postback_traffic_sources")
    op.drop_table("postback_programs")
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clicks_traffic_source_id"))
        batch_op.drop_index(batch_op.f("ix_clicks_publisher_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_clicks_program_id"))
        batch_op.drop_index(batch_op.f("ix_clicks_fobs"))

    op.drop_table("clicks")
    with op.batch_alter_table("traffic_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_traffic_sources_publisher_id"))

    op.drop_table("traffic_sources")
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_programs_advertiser_id"))

    op.drop_table("programs")
    with op.batch_alter_table("postbacks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_postbacks_publisher_id"))

    op.drop_table("postbacks")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entries_target_type_target_id"))
        batch_op.drop_index(batch_op.f("ix_audit_entries_created_at"))

    op.drop_table("audit_entries")
    op.drop_table("staff_users")
    op.drop_table("publishers")
    op.drop_table("demo_receipts")
    op.drop_table("advertisers")
