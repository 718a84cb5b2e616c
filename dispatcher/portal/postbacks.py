"""A publisher's postbacks: reading with their health, creating, changing, pausing and deleting (the pause
itself is `dispatcher.postback_pausing`, which the support console uses too).

Deleting keeps the row (with `deleted_at`) so its deliveries keep their history; a deleted postback is gone
from every list and lookup here, and the outbox never matches it again.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from dispatcher.models import Delivery, DeliveryState, Postback, Program, TrafficSource
from dispatcher.models.types import utcnow
from dispatcher.postback_pausing import set_active
from dispatcher.postback_rules import PostbackSpec

SECRET_PREFIX = "whsec_"


@dataclass(frozen=True)
class LastResult:
    delivery_id: int
    state: str
    status_code: int | None
    error_class: str | None
    at: datetime


@dataclass(frozen=True)
class Health:
    """How a postback is doing: its last finished try and the share of successes over the last 24 h."""

    last: LastResult | None
    tried_24h: int
    succeeded_24h: int

    @property
    def success_rate(self) -> float | None:
        return None if not self.tried_24h else self.succeeded_24h / self.tried_24h

    @property
    def failing(self) -> bool:
        return self.last is not None and self.last.state != DeliveryState.SUCCEEDED.value


def status_of(postback: Postback, health: Health) -> str:
    if not postback.active:
        return "paused"
    # `failing_since` is the engine's record of a run of failures; the last result covers retries in flight.
    return "failing" if postback.failing_since is not None or health.failing else "active"


def own_source_ids(session: Session, publisher_id: int) -> set[int]:
    query = select(TrafficSource.id).where(TrafficSource.publisher_id == publisher_id)
    return set(session.scalars(query))


def list_postbacks(session: Session, publisher_id: int) -> list[Postback]:
    query = (
        select(Postback)
        .where(Postback.publisher_id == publisher_id, Postback.deleted_at.is_(None))
        .order_by(Postback.id)
    )
    return list(session.scalars(query))


def get_postback(session: Session, publisher_id: int, postback_id: int) -> Postback | None:
    """The publisher's own, live postback; None for anyone else's id (the caller answers 404)."""
    postback = session.get(Postback, postback_id)
    if postback is None or postback.publisher_id != publisher_id or postback.deleted_at is not None:
        return None
    return postback


def health(session: Session, postback_ids: list[int], now: datetime | None = None) -> dict[int, Health]:
    """Two grouped queries, whatever the number of postbacks."""
    if not postback_ids:
        return {}
    since = (now or utcnow()) - timedelta(hours=24)
    tried = Delivery.attempt_count > 0
    counts = session.execute(
        select(
            Delivery.postback_id,
            func.count(),
            func.sum(case((Delivery.state == DeliveryState.SUCCEEDED.value, 1), else_=0)),
        )
        .where(Delivery.postback_id.in_(postback_ids), tried, Delivery.updated_at >= since)
        .group_by(Delivery.postback_id)
    ).all()
    latest_ids = (
        select(func.max(Delivery.id))
        .where(Delivery.postback_id.in_(postback_ids), tried)
        .group_by(Delivery.postback_id)
    )
    latest = session.execute(
        select(
            Delivery.postback_id,
            Delivery.id,
            Delivery.state,
            Delivery.last_status_code,
            Delivery.last_error_class,
            Delivery.updated_at,
        ).where(Delivery.id.in_(latest_ids))
    ).all()
    last = {row[0]: LastResult(row[1], row[2], row[3], row[4], row[5]) for row in latest}
    tallies = {row[0]: (int(row[1]), int(row[2] or 0)) for row in counts}
    return {pid: Health(last.get(pid), *tallies.get(pid, (0, 0))) for pid in postback_ids}


def create_postback(session: Session, publisher_id: int, spec: PostbackSpec) -> Postback:
    postback = Postback(publisher_id=publisher_id)
    _apply(session, postback, spec)
    session.add(postback)
    session.flush()
    return postback


def update_postback(session: Session, postback: Postback, spec: PostbackSpec) -> Postback:
    _apply(session, postback, spec)
    session.flush()
    return postback


def _apply(session: Session, postback: Postback, spec: PostbackSpec) -> None:
    postback.name = spec.name
    postback.url_template = spec.url
    postback.method = spec.method
    postback.body_template = spec.body_template
    postback.content_type = spec.content_type
    postback.headers = dict(spec.headers)
    postback.events = list(spec.events)
    postback.statuses = list(spec.statuses)
    postback.status_map = dict(spec.status_map)
    postback.success_body_contains = spec.success_body_contains
    postback.traffic_sources = (
        list(session.scalars(select(TrafficSource).where(TrafficSource.id.in_(spec.traffic_source_ids))))
        if spec.traffic_source_ids
        else []
    )
    postback.programs = (
        list(session.scalars(select(Program).where(Program.id.in_(spec.program_ids))))
        if spec.program_ids
        else []
    )
    set_active(postback, spec.active)


def delete_postback(postback: Postback) -> None:
    postback.deleted_at = utcnow()
    postback.active = False


def new_signing_secret() -> str:
    """Standard Webhooks form: `whsec_` and 24 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def set_signing(postback: Postback, enabled: bool) -> None:
    """Generate (or rotate: a new value replaces the old at once) or remove the signing secret."""
    postback.signing_secret = new_signing_secret() if enabled else None


def spec_of(postback: Postback) -> PostbackSpec:
    """The stored postback as a spec, the base a partial API update is merged onto."""
    return PostbackSpec(
        url=postback.url_template,
        method=postback.method,
        name=postback.name or "",
        traffic_source_ids=tuple(sorted(source.id for source in postback.traffic_sources)),
        program_ids=tuple(sorted(program.id for program in postback.programs)),
        events=tuple(postback.events or ()),
        statuses=tuple(postback.statuses or ()),
        body_template=postback.body_template,
        content_type=postback.content_type,
        headers=dict(postback.headers or {}),
        status_map=dict(postback.status_map or {}),
        success_body_contains=postback.success_body_contains,
        active=postback.active,
    )
