"""The publisher API's JSON shapes for postbacks, deliveries and attempts (times in ISO 8601 UTC)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dispatcher.models import Attempt, Delivery, Postback
from dispatcher.portal.deliveries import LogRow
from dispatcher.portal.postbacks import Health, spec_of, status_of


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def postback_json(postback: Postback, health: Health) -> dict[str, Any]:
    last = health.last
    return {
        "id": postback.id,
        **spec_of(postback).as_values(),
        "signing_secret": postback.signing_secret,
        "status": status_of(postback, health),
        "paused_reason": postback.paused_reason,
        "last_delivery": None
        if last is None
        else {
            "id": last.delivery_id,
            "state": last.state,
            "status_code": last.status_code,
            "error_class": last.error_class,
            "at": _time(last.at),
        },
        "success_rate_24h": health.success_rate,
        "created_at": _time(postback.created_at),
        "updated_at": _time(postback.updated_at),
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "postback_id": delivery.postback_id,
        "transaction_event_id": delivery.transaction_event_id,
        "state": delivery.state,
        "attempt_count": delivery.attempt_count,
        "next_attempt_at": _time(delivery.next_attempt_at),
        "method": delivery.method,
        "url": delivery.url,
        "body": delivery.body,
        "last_status_code": delivery.last_status_code,
        "last_error_class": delivery.last_error_class,
        "last_error": delivery.last_error,
        "created_at": _time(delivery.created_at),
        "updated_at": _time(delivery.updated_at),
        "completed_at": _time(delivery.completed_at),
    }


def log_row_json(row: LogRow) -> dict[str, Any]:
    return {
        **delivery_json(row.delivery),
        "order_number": row.order_number,
        "sales_id": row.sales_id,
        "event": row.event_kind,
        "sub_id": row.fobs,
    }


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "outcome": attempt.outcome,
        "started_at": _time(attempt.started_at),
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
