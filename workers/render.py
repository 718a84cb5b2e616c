"""From rows to the request to send: the macro values of one delivery, expanded into URL, body and headers."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

import macros
from dispatcher.models import Click, Delivery, Postback, Program, Transaction, TransactionEvent
from dispatcher.models.ledger import EventKind
from workers import signing
from workers.egress import OutboundRequest

FORM_TYPE = "application/x-www-form-urlencoded"
FOBS = ("fobs", "fobs2", "fobs3", "fobs4", "fobs5")


@dataclass(frozen=True)
class Claimed:
    """One claimed delivery with everything needed to send it and judge the answer."""

    delivery_id: int
    number: int
    attempt_in_schedule: int
    postback_id: int
    sendable: bool  # False: the postback was paused, deactivated or deleted meanwhile
    paused_reason: str | None
    success_body_contains: str | None
    values: dict[str, object]
    postback: Postback


def load(session: Session, numbers: dict[int, int]) -> list[Claimed]:
    """Two queries for the whole batch; `numbers` maps delivery id -> the attempt number being made."""
    rows = session.execute(
        select(
            Delivery.id,
            Delivery.postback_id,
            Delivery.replayed_after_attempts,
            TransactionEvent.id.label("event_id"),
            TransactionEvent.kind,
            TransactionEvent.status,
            TransactionEvent.sale_amount,
            TransactionEvent.commission,
            TransactionEvent.occurred_at,
            Transaction.sales_id,
            Transaction.order_number,
            Transaction.currency,
            Transaction.event_type,
            Transaction.program_id,
            Transaction.publisher_id,
            Transaction.traffic_source_id,
            Program.name.label("program_name"),
            Program.advertiser_id,
            Click.click_id,
            *(getattr(Click, name) for name in FOBS),
        )
        .join(TransactionEvent, TransactionEvent.id == Delivery.transaction_event_id)
        .join(Transaction, Transaction.id == Delivery.transaction_id)
        .join(Program, Program.id == Transaction.program_id)
        .outerjoin(Click, Click.id == Transaction.click_pk)
        .where(Delivery.id.in_(list(numbers)))
    ).all()
    # Rows as tuples and each postback loaded once: a batch usually holds few distinct postbacks.
    wanted = {row.postback_id for row in rows}
    postbacks = {hook.id: hook for hook in session.scalars(select(Postback).where(Postback.id.in_(wanted)))}
    return [_claimed(row, numbers[row.id], postbacks[row.postback_id]) for row in rows]


def _claimed(row: Row[Any], number: int, postback: Postback) -> Claimed:
    sendable = postback.active and postback.deleted_at is None and postback.paused_at is None
    paused = postback.paused_reason or ("deleted" if postback.deleted_at else "deactivated")
    return Claimed(
        delivery_id=row.id,
        number=number,
        attempt_in_schedule=number - row.replayed_after_attempts,
        postback_id=postback.id,
        sendable=sendable,
        paused_reason=None if sendable else paused,
        success_body_contains=postback.success_body_contains,
        values=macro_values(row, postback),
        postback=postback,
    )


def macro_values(row: Row[Any], postback: Postback) -> dict[str, object]:
    """The values that do not change between attempts (`attempt` and `ts` are added per attempt)."""
    values: dict[str, object] = {
        "on": row.order_number,
        "sa": row.sale_amount,
        "ca": row.commission,
        "flx_salesid": row.sales_id,
        "et": row.occurred_at,
        "programid": row.program_id,
        "status": (postback.status_map or {}).get(row.status, row.status),
        "event": row.event_type if row.kind == EventKind.CREATED.value else row.kind,
        "currency": row.currency,
        "programname": row.program_name,
        "advertiserid": row.advertiser_id,
        "publisherid": row.publisher_id,
        "tsid": row.traffic_source_id,
        "txid": f"{row.sales_id}-{row.event_id}",
        "deliveryid": row.id,
        "clickid": row.click_id,
    }
    for name in FOBS:
        values[name] = getattr(row, name)
    return values


def build_request(job: Claimed, now: datetime, user_agent: str) -> OutboundRequest:
    """Expand the postback for this attempt; MacroError (a permanent failure) when a template is broken."""
    postback = job.postback
    values = {**job.values, "attempt": job.number, "ts": now}
    url = template(postback.url_template, macros.Context.URL).expand(values)
    headers = {"User-Agent": user_agent, "Accept-Encoding": "identity"}
    for name, value in (postback.headers or {}).items():
        headers[name] = template(value, macros.Context.TEXT).expand(values)
    body: bytes | None = None
    if postback.method == "POST":
        content_type = postback.content_type or FORM_TYPE
        context = macros.Context.JSON if "json" in content_type.lower() else macros.Context.FORM
        body = template(postback.body_template or "", context).expand(values).encode()
        headers["Content-Type"] = content_type
    if postback.signing_secret:
        headers.update(
            signing.headers(
                postback.signing_secret, f"dlv_{job.delivery_id}", int(now.timestamp()), body or b""
            )
        )
    return OutboundRequest(postback.method, url, headers, body)


def destination(request_url: str) -> str:
    """The host (and port, when not the default) whose slots a request takes."""
    parts = urlsplit(request_url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


@functools.lru_cache(maxsize=4096)
def template(source: str, context: macros.Context) -> macros.Template:
    # Parsed templates are immutable and shared by every thread; parsing is the expensive part.
    return macros.parse(source, context)
