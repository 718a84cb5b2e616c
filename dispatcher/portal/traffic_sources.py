"""A publisher's traffic sources: list, add, rename (names are unique per publisher)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher import accounts
from dispatcher.models import TrafficSource


def list_sources(session: Session, publisher_id: int) -> list[TrafficSource]:
    query = (
        select(TrafficSource).where(TrafficSource.publisher_id == publisher_id).order_by(TrafficSource.name)
    )
    return list(session.scalars(query))


def get_source(session: Session, publisher_id: int, source_id: int) -> TrafficSource | None:
    source = session.get(TrafficSource, source_id)
    return source if source is not None and source.publisher_id == publisher_id else None


def add_source(session: Session, publisher_id: int, name: str) -> TrafficSource:
    return accounts.create_traffic_source(session, publisher_id, name)


def rename_source(session: Session, source: TrafficSource, name: str) -> TrafficSource:
    return accounts.rename_traffic_source(session, source, name)
