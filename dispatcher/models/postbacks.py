"""Publishers' global postbacks: URL templates with filters, and where they may fire."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, Column, ForeignKey, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dispatcher.models.base import Base, one_of
from dispatcher.models.ledger import EventKind, EventType, TransactionStatus
from dispatcher.models.parties import Program, TrafficSource
from dispatcher.models.types import BigId, UTCDateTime, utcnow

JSONColumn = JSON().with_variant(JSONB(), "postgresql")

# What a postback can subscribe to: the first report of a sale or lead, then each later change.
POSTBACK_EVENTS = (
    EventType.SALE.value,
    EventType.LEAD.value,
    EventKind.APPROVED.value,
    EventKind.DECLINED.value,
    EventKind.REVERSED.value,
    EventKind.ADJUSTED.value,
)
DEFAULT_EVENTS = [EventType.SALE.value, EventType.LEAD.value]
DEFAULT_STATUSES = [status.value for status in TransactionStatus]


class HttpMethod(StrEnum):
    GET = "GET"
    POST = "POST"


# Empty scope = every traffic source (or program) of the publisher.
postback_traffic_sources = Table(
    "postback_traffic_sources",
    Base.metadata,
    Column("postback_id", ForeignKey("postbacks.id", ondelete="CASCADE"), primary_key=True),
    Column("traffic_source_id", ForeignKey("traffic_sources.id", ondelete="CASCADE"), primary_key=True),
)
postback_programs = Table(
    "postback_programs",
    Base.metadata,
    Column("postback_id", ForeignKey("postbacks.id", ondelete="CASCADE"), primary_key=True),
    Column("program_id", ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
)


class Postback(Base):
    __tablename__ = "postbacks"
    __table_args__ = (one_of("method", HttpMethod),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    publisher_id: Mapped[int] = mapped_column(ForeignKey("publishers.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    url_template: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(8), default=HttpMethod.GET.value)
    body_template: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(100))
    headers: Mapped[dict[str, str]] = mapped_column(JSONColumn, default=dict)
    events: Mapped[list[str]] = mapped_column(JSONColumn, default=lambda: list(DEFAULT_EVENTS))
    statuses: Mapped[list[str]] = mapped_column(JSONColumn, default=lambda: list(DEFAULT_STATUSES))
    # Our status -> the receiver's word, e.g. {"approved": "sale", "declined": "rejected"}.
    status_map: Mapped[dict[str, str]] = mapped_column(JSONColumn, default=dict)
    # A 2xx whose body lacks this text is a failure (receivers that answer 200 "success=false").
    success_body_contains: Mapped[str | None] = mapped_column(String(200))
    # Kept readable: the worker needs it to sign (Standard Webhooks HMAC-SHA256).
    signing_secret: Mapped[str | None] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    paused_reason: Mapped[str | None] = mapped_column(Text)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Start of the current run of failed attempts (any success clears it): failing for 5 days pauses it.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Deleted postbacks stay as rows so their deliveries keep their history.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    traffic_sources: Mapped[list[TrafficSource]] = relationship(secondary=postback_traffic_sources)
    programs: Mapped[list[Program]] = relationship(secondary=postback_programs)
