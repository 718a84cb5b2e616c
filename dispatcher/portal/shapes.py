"""The publisher API's JSON shapes for postbacks and the delivery log (times in ISO 8601 UTC); one delivery
and its attempts are shaped by `dispatcher.delivery_details`, which the staff's routes use too."""

from __future__ import annotations

from typing import Any

from dispatcher.delivery_details import LastRequest, delivery_json, iso_time
from dispatcher.models import Postback
from dispatcher.portal.deliveries import LogRow
from dispatcher.portal.postbacks import Health, spec_of, status_of


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
            "at": iso_time(last.at),
        },
        "success_rate_24h": health.success_rate,
        "created_at": iso_time(postback.created_at),
        "updated_at": iso_time(postback.updated_at),
    }


def log_row_json(row: LogRow, last: LastRequest | None) -> dict[str, Any]:
    return {
        **delivery_json(row.delivery, last),
        "order_number": row.order_number,
        "sales_id": row.sales_id,
        "event": row.event_kind,
        "sub_id": row.fobs,
    }
