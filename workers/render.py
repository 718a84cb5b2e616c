"""From rows to the request to send: the macro values of one delivery, expanded into URL, body and headers."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

import macros
from dispatcher.models import Click, Delivery, Postback, Program, Transaction, TransactionEvent
from dispatcher.models.ledger import EventKind
from workers import signing
from workers.egress import OutboundRequest

FORM_TYPE = "application/x-www-form-urlencoded"


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
    """One query for the whole batch; `numbers` maps delivery id -> the attempt number being made."""
    rows = session.execute(
        select(
            Delivery.id,
            Delivery.replayed_after_attempts,
            Postback,
            TransactionEvent,
            Transaction,
            Click,
            Program,
        )
        .join(Postback, Postback.id == Delivery.postback_id)
        .join(TransactionEvent, TransactionEvent.id == Delivery.transaction_event_id)
        .join(Transaction, Transaction.id == Delivery.transaction_id)
        .join(Program, Program.id == Transaction.program_id)
        .outerjoin(Click, Click.id == Transaction.click_pk)
        .where(Delivery.id.in_(list(numbers)))
    ).all()
    jobs = []
    for delivery_id, replayed_after, postback, event, sale, click, program in rows:
        number = numbers[delivery_id]
        sendable = postback.active and postback.deleted_at is None and postback.paused_at is None
        paused = postback.paused_reason or ("deleted" if postback.deleted_at else "deactivated")
        jobs.append(
            Claimed(
                delivery_id=delivery_id,
                number=number,
                attempt_in_schedule=number - replayed_after,
                postback_id=postback.id,
                sendable=sendable,
                paused_reason=None if sendable else paused,
                success_body_contains=postback.success_body_contains,
                values=macro_values(delivery_id, postback, event, sale, click, program),
                postback=postback,
            )
        )
    return jobs


def macro_values(
    delivery_id: int,
    postback: Postback,
    event: TransactionEvent,
    sale: Transaction,
    click: Click | None,
    program: Program,
) -> dict[str, object]:
    """The values that do not change between attempts (`attempt` and `ts` are added per attempt)."""
    values: dict[str, object] = {
        "on": sale.order_number,
        "sa": event.sale_amount,
        "ca": event.commission,
        "flx_salesid": sale.sales_id,
        "et": event.occurred_at,
        "programid": sale.program_id,
        "status": (postback.status_map or {}).get(event.status, event.status),
        "event": sale.event_type if event.kind == EventKind.CREATED.value else event.kind,
        "currency": sale.currency,
        "programname": program.name,
        "advertiserid": program.advertiser_id,
        "publisherid": sale.publisher_id,
        "tsid": sale.traffic_source_id,
        "txid": f"{sale.sales_id}-{event.id}",
        "deliveryid": delivery_id,
    }
    if click is not None:
        values.update(
            clickid=click.click_id,
            fobs=click.fobs,
            fobs2=click.fobs2,
            fobs3=click.fobs3,
            fobs4=click.fobs4,
            fobs5=click.fobs5,
        )
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
