"""What happened: clicks on tracking links, transactions reported by advertisers, and their history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dispatcher.models.base import Base, one_of
from dispatcher.models.types import BigId, Money, UTCDateTime, utcnow

SUB_ID_LENGTH = 255


class EventType(StrEnum):
    SALE = "sale"
    LEAD = "lead"


class TransactionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"
    REVERSED = "reversed"


class EventKind(StrEnum):
    CREATED = "created"
    APPROVED = "approved"
    DECLINED = "declined"
    REVERSED = "reversed"
    ADJUSTED = "adjusted"


class Channel(StrEnum):
    """How a transaction or a change reached us."""

    API = "api"
    S2S = "s2s"
    PIXEL = "pixel"
    CSV = "csv"
    STAFF = "staff"


class Click(Base):
    __tablename__ = "clicks"
    __table_args__ = (
        Index(None, "publisher_id", "created_at"),
        Index(None, "fobs"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The network click id: unguessable, URL-safe, handed to the advertiser and back.
    click_id: Mapped[str] = mapped_column(String(32), unique=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="RESTRICT"), index=True)
    publisher_id: Mapped[int] = mapped_column(ForeignKey("publishers.id", ondelete="RESTRICT"))
    traffic_source_id: Mapped[int | None] = mapped_column(
        ForeignKey("traffic_sources.id", ondelete="RESTRICT"), index=True
    )
    fobs: Mapped[str | None] = mapped_column(String(SUB_ID_LENGTH))
    fobs2: Mapped[str | None] = mapped_column(String(SUB_ID_LENGTH))
    fobs3: Mapped[str | None] = mapped_column(String(SUB_ID_LENGTH))
    fobs4: Mapped[str | None] = mapped_column(String(SUB_ID_LENGTH))
    fobs5: Mapped[str | None] = mapped_column(String(SUB_ID_LENGTH))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Transaction(Base):
    __tablename__ = "transactions"
    __table_args__ = (
        # The business key: an advertiser reporting the same order again is a duplicate, not a new sale.
        # Order number first, so its index also answers look-ups by order number alone (support search,
        # a batch's earlier reports): no separate index on it for every reported sale to write.
        UniqueConstraint("order_number", "program_id", "event_type"),
        one_of("event_type", EventType),
        one_of("status", TransactionStatus),
        one_of("channel", Channel),
        CheckConstraint("CAST(sale_amount AS NUMERIC) >= 0", name="sale_amount_not_negative"),
        CheckConstraint("CAST(commission AS NUMERIC) >= 0", name="commission_not_negative"),
        Index(None, "publisher_id", "created_at"),
        # Support search by program (and advertiser, through its programs).
        Index(None, "program_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sales_id: Mapped[str] = mapped_column(String(32), unique=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="RESTRICT"))
    click_pk: Mapped[int | None] = mapped_column(ForeignKey("clicks.id", ondelete="RESTRICT"), index=True)
    publisher_id: Mapped[int] = mapped_column(ForeignKey("publishers.id", ondelete="RESTRICT"))
    traffic_source_id: Mapped[int | None] = mapped_column(
        ForeignKey("traffic_sources.id", ondelete="RESTRICT")
    )
    order_number: Mapped[str] = mapped_column(String(255))
    sale_amount: Mapped[Decimal] = mapped_column(Money)
    commission: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    event_type: Mapped[str] = mapped_column(String(8), default=EventType.SALE.value)
    status: Mapped[str] = mapped_column(String(16), default=TransactionStatus.PENDING.value)
    channel: Mapped[str] = mapped_column(String(8), default=Channel.API.value)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    click: Mapped[Click | None] = relationship()
    events: Mapped[list[TransactionEvent]] = relationship(
        back_populates="transaction", order_by="TransactionEvent.id"
    )


class TransactionEvent(Base):
    """Immutable history of a transaction; each event may fire postbacks."""

    __tablename__ = "transaction_events"
    __table_args__ = (
        one_of("kind", EventKind),
        one_of("status", TransactionStatus),
        one_of("channel", Channel),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("transactions.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    # The transaction's state as of this event, so a postback can be sent (or resent) from the event alone.
    status: Mapped[str] = mapped_column(String(16))
    sale_amount: Mapped[Decimal] = mapped_column(Money)
    commission: Mapped[Decimal] = mapped_column(Money)
    channel: Mapped[str] = mapped_column(String(8))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    transaction: Mapped[Transaction] = relationship(back_populates="events")
