"""The outbox and its log: one delivery per postback x transaction event, one attempt row per try."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dispatcher.models.base import Base, one_of
from dispatcher.models.postbacks import JSONColumn
from dispatcher.models.types import BigId, UTCDateTime, utcnow

RESPONSE_EXCERPT_BYTES = 4096


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its first or next attempt (a lease marks one being sent)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # permanent failure or attempts exhausted; a replay re-opens it


class AttemptOutcome(StrEnum):
    SENDING = "sending"  # written before the request leaves, so nothing is sent without a trace
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    FAILED = "failed"


class ErrorClass(StrEnum):
    TIMEOUT = "timeout"
    CONNECT = "connect"
    DNS = "dns"
    SSRF = "ssrf"
    TLS = "tls"
    HTTP_STATUS = "http_status"
    BODY_MISMATCH = "body_mismatch"
    REDIRECT = "redirect"
    TEMPLATE = "template"
    INTERRUPTED = "interrupted"  # the worker died mid-attempt; found when the delivery is claimed again
    PAUSED = "paused"  # the postback was paused or deleted before this delivery could be sent


def _where(condition: str, *columns: str) -> Index:
    """A partial index: only the rows matching `condition` (SQL) are in it."""
    return Index(None, *columns, sqlite_where=text(condition), postgresql_where=text(condition))


def _set_only(*columns: str) -> Index:
    """A partial index over rows where its first column is set."""
    return _where(f"{columns[0]} IS NOT NULL", *columns)


# Host names are ASCII (IDNA) and compared byte by byte: under PostgreSQL's "C" collation a range
# (`host:` .. `host;`, every port of a host) is answered by the plain index. SQLite compares bytes already.
HOST = String(255).with_variant(String(255, collation="C"), "postgresql")


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        # At most one delivery per postback and event: re-running the outbox never double-fires.
        UniqueConstraint("postback_id", "transaction_event_id"),
        one_of("state", DeliveryState),
        CheckConstraint("attempt_count >= 0", name="attempt_count_not_negative"),
        # The pump's question: which pending deliveries are due?
        Index(None, "state", "next_attempt_at"),
        Index(None, "publisher_id", "created_at"),
        # Support search (newest first, keyset on created_at, id): one index per filter that narrows alone.
        Index(None, "created_at"),
        Index(None, "postback_id", "created_at"),
        # Without the succeeded deliveries (nearly all kept rows; retention, bench.retention): a search for
        # them matches most rows anyway and walks (created_at) as fast. `state = 'failed'` or `'pending'`
        # implies the condition, so PostgreSQL still reads this index for them.
        _where(f"state <> '{DeliveryState.SUCCEEDED.value}'", "state", "created_at"),
        # These three leave out rows whose column is still NULL, as it is in every new delivery: recording a
        # sale writes none of them. Every query on them compares the column, which implies NOT NULL.
        _set_only("destination_host", "created_at"),
        _set_only("last_error_class", "created_at"),
        _set_only("last_status_code", "created_at"),
        # Bulk replay's and the dashboard's "failed since T". Only failed rows: retention's "succeeded before
        # T" walks the primary key in batches and needs no index of its own.
        _where(f"state = '{DeliveryState.FAILED.value}'", "state", "completed_at"),
        # The order rule (workers.claims.in_turn): is an earlier event of this transaction still pending for
        # this postback? Only pending rows, so it stays as small as the backlog.
        Index(
            "ix_deliveries_pending_turn",
            "transaction_id",
            "postback_id",
            "transaction_event_id",
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No index of its own: the unique constraint and (postback_id, created_at) start with it, and every
    # index costs each reported sale a write. Postbacks are soft-deleted: the foreign key needs none either.
    postback_id: Mapped[int] = mapped_column(ForeignKey("postbacks.id", ondelete="RESTRICT"))
    # Nothing looks deliveries up by event alone (a duplicate report counts them by transaction_id), and
    # events are never deleted.
    transaction_event_id: Mapped[int] = mapped_column(
        ForeignKey("transaction_events.id", ondelete="RESTRICT")
    )
    # Copied from the event's transaction and the postback so searches need no joins.
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("transactions.id", ondelete="RESTRICT"), index=True
    )
    publisher_id: Mapped[int] = mapped_column(ForeignKey("publishers.id", ondelete="RESTRICT"))
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING.value)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    # When the delivery was last handed to RQ. The creator enqueues right after commit, hence the default;
    # NULL means "nobody has queued it": the pump hands it over as soon as it is due. A value that grows old
    # while the delivery is still due means the job was lost (Redis flushed, worker killed).
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    # Attempts made before the last replay: a replayed delivery starts the retry schedule afresh.
    replayed_after_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A claim: the worker holding it may send until the lease expires; after that anyone may.
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    leased_by: Mapped[str | None] = mapped_column(String(100))
    # The request as last sent is its last attempt's (`dispatcher.delivery_details.last_requests`): kept once,
    # there, because the expanded URL is a delivery's largest value (macros like #attempt# and #ts# change it
    # between attempts, so each attempt keeps its own).
    # "host" or "host:port" (a port other than the scheme's default), lowercased; indexed with created_at.
    destination_host: Mapped[str | None] = mapped_column(HOST)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error_class: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    attempts: Mapped[list[Attempt]] = relationship(back_populates="delivery", order_by="Attempt.number")


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint("delivery_id", "number"),
        one_of("outcome", AttemptOutcome),
        CheckConstraint("number >= 1", name="number_positive"),
        Index(None, "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16), default=AttemptOutcome.SENDING.value)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(Text)
    request_headers: Mapped[dict[str, Any]] = mapped_column(JSONColumn, default=dict)
    request_body: Mapped[str | None] = mapped_column(Text)
    resolved_ip: Mapped[str | None] = mapped_column(String(45))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, Any] | None] = mapped_column(JSONColumn)
    # At most RESPONSE_EXCERPT_BYTES of the receiver's body: hostile text, always shown escaped.
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error_class: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(100))

    delivery: Mapped[Delivery] = relationship(back_populates="attempts")
