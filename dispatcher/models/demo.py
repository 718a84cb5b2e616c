"""Postbacks received by the built-in demo receiver (development only: `make run` points a postback at it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dispatcher.models.base import Base
from dispatcher.models.postbacks import JSONColumn
from dispatcher.models.types import BigId, UTCDateTime, utcnow


class DemoReceipt(Base):
    __tablename__ = "demo_receipts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    query: Mapped[dict[str, Any]] = mapped_column(JSONColumn, default=dict)
    body: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
