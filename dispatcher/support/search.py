"""Support search over every delivery: combinable filters, newest first, keyset pages on (created_at, id).

Each filter that narrows on its own has an index (see `Delivery.__table_args__`): delivery columns directly,
transaction and click values through their unique or indexed columns and `deliveries.transaction_id`. The
next page starts below the last row's (created_at, id), looked up from its id, so page 1,000 costs what page 1
costs; there is no OFFSET and no COUNT(*) over millions of rows.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from dispatcher.host_filter import host_matches, searched_host
from dispatcher.ledger.outbox import trigger_of
from dispatcher.models import (
    Click,
    Delivery,
    DeliveryState,
    ErrorClass,
    Postback,
    Program,
    Publisher,
    Transaction,
    TransactionEvent,
)
from dispatcher.support import params
from dispatcher.transaction_filters import SaleValues, transaction_ids

PAGE_SIZE = 50
STATES = tuple(state.value for state in DeliveryState)
ERROR_CLASSES = tuple(error.value for error in ErrorClass)
TEXT_FILTERS = ("sales_id", "order_number", "click_id", "sub_id", "destination_host")
ID_FILTERS = ("publisher_id", "program_id", "advertiser_id", "postback_id")
# Every query parameter `parse_filters` reads (the staff API refuses any other name).
FILTER_PARAMETERS = (
    *TEXT_FILTERS,
    *ID_FILTERS,
    "state",
    "error_class",
    "status_code",
    "from",
    "to",
    "before",
)


@dataclass(frozen=True)
class Filters:
    sales_id: str | None = None
    order_number: str | None = None
    click_id: str | None = None
    sub_id: str | None = None  # the click's fobs: the publisher's own (tracker's) click id
    publisher_id: int | None = None
    program_id: int | None = None
    advertiser_id: int | None = None
    postback_id: int | None = None
    destination_host: str | None = None
    state: str | None = None
    error_class: str | None = None
    status_code: int | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None  # exclusive
    before_id: int | None = None  # keyset cursor: rows older than this delivery

    def as_args(self) -> dict[str, str]:
        """The filters as query parameters (links, the next page), without the cursor."""
        args: dict[str, str] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None or field.name == "before_id":
                continue
            name = {"created_from": "from", "created_to": "to"}.get(field.name, field.name)
            args[name] = params.iso(value) if isinstance(value, datetime) else str(value)
        return args

    @property
    def empty(self) -> bool:
        return not self.as_args()


@dataclass(frozen=True)
class Row:
    delivery: Delivery
    publisher_name: str
    postback_name: str
    program_name: str
    order_number: str
    sales_id: str
    event_kind: str
    sub_id: str | None
    click_id: str | None


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    next_before: int | None  # the cursor of the next page, None on the last


def parse_filters(args: Any) -> Filters:
    """Query parameters to filters; a bad value raises `FieldError` naming the parameter."""
    values: dict[str, Any] = {name: params.text(args, name) for name in TEXT_FILTERS}
    for name in ID_FILTERS:
        values[name] = params.row_id(args, name)
    values["state"] = params.choice(args, "state", STATES)
    values["error_class"] = params.choice(args, "error_class", ERROR_CLASSES)
    values["status_code"] = params.status_code(params.text(args, "status_code"))
    values["created_from"] = params.moment(args, "from", end=False)
    values["created_to"] = params.moment(args, "to", end=True)
    values["before_id"] = params.row_id(args, "before")
    if values["destination_host"]:
        values["destination_host"] = searched_host(values["destination_host"])
    return Filters(**values)


def search(session: Session, filters: Filters, limit: int = PAGE_SIZE) -> Page:
    """One page of matching deliveries, newest first.

    Two steps: the page's ids from `deliveries` alone (the query that meets millions of rows, simple enough
    for the planner to pick the filter's index), then up to `limit` rows joined with their context by key.
    """
    ids = list(session.scalars(query_for(session, filters).limit(limit + 1)))
    more = len(ids) > limit
    ids = ids[:limit]
    if not ids:
        return Page([], None)
    rows = [_row(found) for found in session.execute(_details(ids))]
    return Page(rows, ids[-1] if more else None)


def query_for(session: Session, filters: Filters) -> Select[int]:
    """The ids of matching deliveries, newest first (without LIMIT); what the benchmark EXPLAINs."""
    query = (
        select(Delivery.id)
        .where(*conditions(filters))
        .order_by(Delivery.created_at.desc(), Delivery.id.desc())
    )
    if filters.before_id is not None:
        query = query.where(_older_than(session, filters.before_id))
    return query


def _details(ids: list[int]) -> Select[*tuple[Any, ...]]:
    return (
        select(
            Delivery,
            Publisher.name.label("publisher_name"),
            Postback.name.label("postback_name"),
            Program.name.label("program_name"),
            Transaction.order_number,
            Transaction.sales_id,
            Transaction.event_type,
            TransactionEvent.kind,
            Click.fobs,
            Click.click_id,
        )
        .join(Transaction, Transaction.id == Delivery.transaction_id)
        .join(TransactionEvent, TransactionEvent.id == Delivery.transaction_event_id)
        .join(Publisher, Publisher.id == Delivery.publisher_id)
        .join(Postback, Postback.id == Delivery.postback_id)
        .join(Program, Program.id == Transaction.program_id)
        .outerjoin(Click, Click.id == Transaction.click_pk)
        .where(Delivery.id.in_(ids))
        .order_by(Delivery.created_at.desc(), Delivery.id.desc())
    )


def conditions(filters: Filters) -> list[Any]:
    """The WHERE clauses on deliveries; transaction and click values go through one indexed subquery."""
    where: list[Any] = []
    for column, value in (
        (Delivery.publisher_id, filters.publisher_id),
        (Delivery.postback_id, filters.postback_id),
        (Delivery.state, filters.state),
        (Delivery.last_error_class, filters.error_class),
        (Delivery.last_status_code, filters.status_code),
    ):
        if value is not None:
            where.append(column == value)
    if filters.destination_host is not None:
        where.append(host_matches(filters.destination_host))
    if filters.created_from is not None:
        where.append(Delivery.created_at >= filters.created_from)
    if filters.created_to is not None:
        where.append(Delivery.created_at < filters.created_to)
    sales = _sales(filters)
    if sales is not None:
        where.append(Delivery.transaction_id.in_(sales))
    return where


def _sales(filters: Filters) -> Select[int] | None:
    return transaction_ids(SaleValues.of(filters))


def _older_than(session: Session, delivery_id: int) -> Any:
    created = session.scalar(select(Delivery.created_at).where(Delivery.id == delivery_id))
    if created is None:
        return Delivery.id < delivery_id  # the cursor row was pruned: ids grow with time, close enough
    return and_(
        Delivery.created_at <= created,
        or_(Delivery.created_at < created, Delivery.id < delivery_id),
    )


def _row(found: Any) -> Row:
    delivery: Delivery = found.Delivery
    return Row(
        delivery,
        found.publisher_name,
        found.postback_name or f"Postback {delivery.postback_id}",
        found.program_name,
        found.order_number,
        found.sales_id,
        trigger_of(found.kind, found.event_type),
        found.fobs,
        found.click_id,
    )
