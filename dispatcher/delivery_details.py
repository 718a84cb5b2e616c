"""One delivery with its attempts, as the API shows it to its publisher and to staff (times in ISO 8601 UTC).

The publisher's routes reach it through `dispatcher.portal.deliveries.get_delivery` (their own only), the
staff's through `dispatcher.web.support_api` (any).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, selectinload

from dispatcher.models import Attempt, Delivery


@dataclass(frozen=True)
class LastRequest:
    """A delivery's request as last sent (or being sent): its last attempt's. None before the first."""

    method: str
    url: str
    body: str | None

    @classmethod
    def of(cls, attempt: Attempt) -> LastRequest:
        return cls(attempt.method, attempt.url, attempt.request_body)


def with_attempts(session: Session, delivery_id: int) -> Delivery | None:
    """Any delivery with its attempts loaded (staff); publishers go through `get_delivery`."""
    return session.scalar(
        select(Delivery).options(selectinload(Delivery.attempts)).where(Delivery.id == delivery_id)
    )


def last_request(delivery: Delivery) -> LastRequest | None:
    """From the attempts loaded with the delivery (`with_attempts`), ordered by number."""
    return LastRequest.of(delivery.attempts[-1]) if delivery.attempts else None


def last_requests(session: Session, delivery_ids: Iterable[int]) -> dict[int, LastRequest]:
    """A page of deliveries' last requests in one query (read through the attempts' unique key)."""
    ids = sorted(set(delivery_ids))
    if not ids:
        return {}
    last = (
        select(Attempt.delivery_id, func.max(Attempt.number))
        .where(Attempt.delivery_id.in_(ids))
        .group_by(Attempt.delivery_id)
    )
    rows = session.execute(
        select(Attempt.delivery_id, Attempt.method, Attempt.url, Attempt.request_body).where(
            Attempt.delivery_id.in_(ids), tuple_(Attempt.delivery_id, Attempt.number).in_(last)
        )
    )
    return {delivery_id: LastRequest(method, url, body) for delivery_id, method, url, body in rows}


def iso_time(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def delivery_json(delivery: Delivery, last: LastRequest | None) -> dict[str, Any]:
    """`last`: its last request (`last_request` or `last_requests`); method, url and body are null without."""
    return {
        "id": delivery.id,
        "postback_id": delivery.postback_id,
        "transaction_event_id": delivery.transaction_event_id,
        "state": delivery.state,
        "attempt_count": delivery.attempt_count,
        "next_attempt_at": iso_time(delivery.next_attempt_at),
        "method": last.method if last else None,
        "url": last.url if last else None,
        "body": last.body if last else None,
        "last_status_code": delivery.last_status_code,
        "last_error_class": delivery.last_error_class,
        "last_error": delivery.last_error,
        "created_at": iso_time(delivery.created_at),
        "updated_at": iso_time(delivery.updated_at),
        "completed_at": iso_time(delivery.completed_at),
    }


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "outcome": attempt.outcome,
        "started_at": iso_time(attempt.started_at),
        "duration_ms": attempt.duration_ms,
        "method": attempt.method,
        "url": attempt.url,
        "request_body": attempt.request_body,
        "resolved_ip": attempt.resolved_ip,
        "status_code": attempt.status_code,
        "response_headers": attempt.response_headers,
        "response_excerpt": attempt.response_excerpt,
        "error_class": attempt.error_class,
        "error_message": attempt.error_message,
    }
