"""The advertiser API's JSON shapes of transactions (money as text in the currency's units, times in UTC)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from dispatcher.delivery_details import iso_time
from dispatcher.ledger.commission import rounded
from dispatcher.models import TransactionEvent


def transaction_json(row: Row[*tuple[Any, ...]]) -> dict[str, Any]:
    return {
        "sales_id": row.sales_id,
        "order_number": row.order_number,
        "program_id": row.program_id,
        "event": row.event_type,
        "status": row.status,
        "sale_amount": str(rounded(row.sale_amount, row.currency)),
        "commission": str(rounded(row.commission, row.currency)),
        "currency": row.currency,
        "event_time": iso_time(row.event_time),
        "click_id": row.click_id,
        "publisher_id": row.publisher_id,
        "channel": row.channel,
        "created_at": iso_time(row.created_at),
        "updated_at": iso_time(row.updated_at),
    }


def history_json(event: TransactionEvent, currency: str) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "status": event.status,
        "sale_amount": str(rounded(event.sale_amount, currency)),
        "commission": str(rounded(event.commission, currency)),
        "channel": event.channel,
        "occurred_at": iso_time(event.occurred_at),
        "recorded_at": iso_time(event.created_at),
    }
