"""A publisher's delivery log: filtered, newest first; one delivery with its attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from dispatcher.delivery_details import with_attempts
from dispatcher.ledger.outbox import trigger_of
from dispatcher.models import Click, Delivery, DeliveryState, Postback, Transaction, TransactionEvent
from dispatcher.portal.postbacks import health, status_of
from dispatcher.validation import FieldError, end_of_day, optional_day, positive_id

PAGE_SIZE = 50
STATES = tuple(state.value for state in DeliveryState)


@dataclass(frozen=True)
class Filters:
    postback_id: int | None = None
    state: str | None = None
    day_from: date | None = None
    day_to: date | None = None  # inclusive
    order_number: str | None = None
    sub_id: str | None = None  # any of fobs..fobs5 of the click
    before_id: int | None = None  # keyset paging: rows with a smaller id

    def as_args(self) -> dict[str, str]:
        """The filters as query parameters (for "next page" links), without the cursor."""
        pairs = {
            "postback_id": self.postback_id,
            "state": self.state,
            "from": self.day_from.isoformat() if self.day_from else None,
            "to": self.day_to.isoformat() if self.day_to else None,
            "order_number": self.order_number,
            "sub_id": self.sub_id,
        }
        return {key: str(value) for key, value in pairs.items() if value not in (None, "")}


@dataclass(frozen=True)
class LogRow:
    delivery: Delivery
    postback_name: str
    postback_deleted: bool
    order_number: str
    sales_id: str
    event_kind: str  # the trigger word: sale or lead for the first report, then approved, declined...
    fobs: str | None


# What a publisher's token filters its deliveries by (the API refuses any other name).
FILTER_PARAMETERS = ("postback_id", "state", "from", "to", "order_number", "sub_id", "before")


def parse_filters(args: Any) -> Filters:
    """Query parameters to filters; a bad value raises `FieldError` naming it."""

    def text(name: str) -> str | None:
        raw = (args.get(name) or "").strip()
        if any(ord(char) < 32 for char in raw):
            raise FieldError(name, raw, "must not contain control characters")
        return raw[:255] or None

    state = (args.get("state") or "").strip() or None
    if state is not None and state not in STATES:
        raise FieldError("state", state, f"must be one of {', '.join(STATES)}")
    postback = (args.get("postback_id") or "").strip()
    before = (args.get("before") or "").strip()
    return Filters(
        postback_id=positive_id("postback_id", postback) if postback else None,
        state=state,
        day_from=optional_day(args, "from"),
        day_to=optional_day(args, "to"),
        order_number=text("order_number"),
        sub_id=text("sub_id"),
        before_id=positive_id("before", before) if before else None,
    )


def search(session: Session, publisher_id: int, filters: Filters, limit: int = PAGE_SIZE) -> list[LogRow]:
    query = _query(publisher_id, filters).limit(limit)
    return [
        LogRow(
            row.Delivery,
            row.name or f"Postback {row.Delivery.postback_id}",
            row.deleted_at is not None,
            row.order_number,
            row.sales_id,
            trigger_of(row.kind, row.event_type),  # sale | lead | approved | ...: what postbacks subscribe to
            row.fobs,
        )
        for row in session.execute(query)
    ]


def _query(publisher_id: int, filters: Filters) -> Select[*tuple[Any, ...]]:
    query = (
        select(
            Delivery,
            Postback.name,
            Postback.deleted_at,
            Transaction.order_number,
            Transaction.sales_id,
            TransactionEvent.kind,
            Transaction.event_type,
            Click.fobs,
        )
        .join(Postback, Postback.id == Delivery.postback_id)
        .join(Transaction, Transaction.id == Delivery.transaction_id)
        .join(TransactionEvent, TransactionEvent.id == Delivery.transaction_event_id)
        .outerjoin(Click, Click.id == Transaction.click_pk)
        .where(Delivery.publisher_id == publisher_id)
        .order_by(Delivery.id.desc())
    )
    if filters.postback_id is not None:
        query = query.where(Delivery.postback_id == filters.postback_id)
    if filters.state is not None:
        query = query.where(Delivery.state == filters.state)
    if filters.day_from is not None:
        query = query.where(Delivery.created_at >= datetime.combine(filters.day_from, time(), UTC))
    if filters.day_to is not None:
        end = end_of_day(filters.day_to)
        query = query.where(Delivery.created_at < end)
    if filters.order_number is not None:
        query = query.where(Transaction.order_number == filters.order_number)
    if filters.sub_id is not None:
        subs = (Click.fobs, Click.fobs2, Click.fobs3, Click.fobs4, Click.fobs5)
        query = query.where(or_(*(column == filters.sub_id for column in subs)))
    if filters.before_id is not None:
        query = query.where(Delivery.id < filters.before_id)
    return query


def get_delivery(session: Session, publisher_id: int, delivery_id: int) -> Delivery | None:
    """The publisher's own delivery with its attempts; None for anyone else's id."""
    delivery = with_attempts(session, delivery_id)
    if delivery is None or delivery.publisher_id != publisher_id:
        return None
    return delivery


def context_of(session: Session, delivery: Delivery) -> dict[str, Any]:
    """What the delivery was about: postback, transaction and event, for its page and the API."""
    postback = session.get(Postback, delivery.postback_id)
    sale = session.get(Transaction, delivery.transaction_id)
    event = session.get(TransactionEvent, delivery.transaction_event_id)
    return {"postback": postback, "transaction": sale, "event": event}


def troubled_postbacks(session: Session, publisher_id: int) -> list[Postback]:
    """Live postbacks that are paused, or whose latest tried delivery did not succeed: the banner's list."""
    live = select(Postback).where(Postback.publisher_id == publisher_id, Postback.deleted_at.is_(None))
    postbacks = list(session.scalars(live.order_by(Postback.id)))
    states = health(session, [postback.id for postback in postbacks])
    return [p for p in postbacks if status_of(p, states[p.id]) != "active"]
