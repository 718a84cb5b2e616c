"""Who takes part: publishers and their traffic sources, advertisers with their programs and users, staff."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dispatcher.models.base import Base, one_of
from dispatcher.models.types import BigId, Money, UTCDateTime, utcnow


class CommissionType(StrEnum):
    PERCENT = "percent"  # percent of the sale amount
    FLAT = "flat"  # fixed amount per event


class StaffRole(StrEnum):
    SUPPORT = "support"
    ADMIN = "admin"


class Publisher(Base):
    __tablename__ = "publishers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    # API token: the public key id finds the row, the salted hash verifies the secret part.
    api_token_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    api_token_hash: Mapped[str | None] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Signed-in sessions carry the epoch they began in; raising it (logout) ends every one of them.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # An IANA zone name (Europe/Berlin) the pages show times in; times are stored in UTC whatever it is.
    time_zone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    traffic_sources: Mapped[list[TrafficSource]] = relationship(back_populates="publisher")


class TrafficSource(Base):
    __tablename__ = "traffic_sources"
    __table_args__ = (UniqueConstraint("publisher_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    publisher_id: Mapped[int] = mapped_column(ForeignKey("publishers.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # A deactivated source's new clicks are refused (400 naming `ts`); its clicks and sales so far stand.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    publisher: Mapped[Publisher] = relationship(back_populates="traffic_sources")


class Advertiser(Base):
    __tablename__ = "advertisers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    api_key_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    api_key_hash: Mapped[str | None] = mapped_column(String(128))
    s2s_token_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    s2s_token_hash: Mapped[str | None] = mapped_column(String(128))
    # The key and token a rotation replaced, still accepted until their `..._until` (the grace period an
    # advertiser gets to deploy the new one); NULL when the last rotation had none.
    previous_api_key_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    previous_api_key_hash: Mapped[str | None] = mapped_column(String(128))
    previous_api_key_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    previous_s2s_token_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    previous_s2s_token_hash: Mapped[str | None] = mapped_column(String(128))
    previous_s2s_token_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    programs: Mapped[list[Program]] = relationship(back_populates="advertiser")


class Program(Base):
    __tablename__ = "programs"
    __table_args__ = (
        one_of("commission_type", CommissionType),
        CheckConstraint("CAST(commission_value AS NUMERIC) >= 0", name="commission_not_negative"),
        CheckConstraint(
            "commission_type <> 'percent' OR CAST(commission_value AS NUMERIC) <= 100",
            name="percent_at_most_100",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    advertiser_id: Mapped[int] = mapped_column(ForeignKey("advertisers.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    landing_url: Mapped[str] = mapped_column(Text)
    commission_type: Mapped[str] = mapped_column(String(16))
    commission_value: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # Transactions without a click id, attributed by the publisher and traffic source the request names.
    allow_clickless: Mapped[bool] = mapped_column(Boolean, default=False)
    # Whether the advertiser may report the commission itself instead of the program's rule.
    allow_advertiser_commission: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    advertiser: Mapped[Advertiser] = relationship(back_populates="programs")


class AdvertiserUser(Base):
    """A person who signs in to the advertiser portal for one advertiser (several may share one)."""

    __tablename__ = "advertiser_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    advertiser_id: Mapped[int] = mapped_column(ForeignKey("advertisers.id", ondelete="RESTRICT"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    time_zone: Mapped[str | None] = mapped_column(String(64))  # as for publishers
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    advertiser: Mapped[Advertiser] = relationship()


class StaffUser(Base):
    __tablename__ = "staff_users"
    __table_args__ = (one_of("role", StaffRole),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default=StaffRole.SUPPORT.value)
    # Staff API token (`stf_<key id>_<secret>`), as for publishers: the key id finds the row, the hash checks.
    api_token_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    api_token_hash: Mapped[str | None] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    time_zone: Mapped[str | None] = mapped_column(String(64))  # as for publishers
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
