"""A publisher's conversions: the transactions attributed to it, what each earned, and what its postbacks did.

One row per transaction (its current status and amounts), newest first, keyset-paged by id; totals of the
whole filtered set by day, program and traffic source, commission split by status and kept per currency (sums
across currencies mean nothing). Days and the from/to filters are UTC days of the conversion's event time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, literal, or_, select
from sqlalchemy.orm import Session

from dispatcher.ledger.clicks import SUB_ID_NAMES
from dispatcher.ledger.fields import minor_unit
from dispatcher.models import Click, Delivery, Program, TrafficSource, Transaction, TransactionEvent
from dispatcher.models.ledger import SUB_ID_LENGTH, TransactionStatus
from dispatcher.validation import FieldError, end_of_day, optional_day, positive_id

PAGE_SIZE = 50
EXPORT_BATCH = 1000
STATUSES = tuple(status.value for status in TransactionStatus)
SUB_IDS = SUB_ID_NAMES


@dataclass(frozen=True)
class Filters:
    program_id: int | None = None
    traffic_source_id: int | None = None
    status: str | None = None
    day_from: date | None = None
    day_to: date | None = None  # inclusive
    sub_id: str | None = None  # any of fobs..fobs5 of the click
    before_id: int | None = None  # keyset paging: transactions with a smaller id

    def as_args(self) -> dict[str, str]:
        """The filters as query parameters (for "next page" and export links), without the cursor."""
        pairs = {
            "program_id": self.program_id,
            "traffic_source_id": self.traffic_source_id,
            "status": self.status,
            "from": self.day_from.isoformat() if self.day_from else None,
            "to": self.day_to.isoformat() if self.day_to else None,
            "sub_id": self.sub_id,
        }
        return {key: str(value) for key, value in pairs.items() if value not in (None, "")}


@dataclass(frozen=True)
class Postbacks:
    """What the transaction's deliveries did, all events and postbacks together."""

    succeeded: int = 0
    failed: int = 0
    pending: int = 0

    @property
    def outcome(self) -> str:
        """One word for a list: none, failed (any failed for good), pending, or succeeded."""
        if not (self.succeeded or self.failed or self.pending):
            return "none"
        return "failed" if self.failed else "pending" if self.pending else "succeeded"


@dataclass(frozen=True)
class Conversion:
    id: int
    sales_id: str
    first_event_id: int  # with sales_id, the #txid# its first postback carried
    order_number: str
    program_id: int
    program_name: str
    traffic_source_id: int | None
    traffic_source_name: str | None
    event: str  # sale or lead
    status: str
    sale_amount: Decimal
    commission: Decimal
    currency: str
    sub_ids: dict[str, str | None]
    event_time: datetime
    recorded_at: datetime
    postbacks: Postbacks = field(default_factory=Postbacks)

    @property
    def txid(self) -> str:
        return f"{self.sales_id}-{self.first_event_id}"


def parse_filters(args: Mapping[str, str]) -> Filters:
    """Query parameters to filters; a bad value raises `FieldError` naming it."""

    def an_id(name: str) -> int | None:
        raw = (args.get(name) or "").strip()
        return positive_id(name, raw) if raw else None

    status = (args.get("status") or "").strip() or None
    if status is not None and status not in STATUSES:
        raise FieldError("status", status, f"must be one of {', '.join(STATUSES)}")
    sub_id = (args.get("sub_id") or "").strip()
    if any(ord(char) < 32 for char in sub_id):
        raise FieldError("sub_id", sub_id, "must not contain control characters")
    if len(sub_id) > SUB_ID_LENGTH:  # no click holds a longer one: say so rather than match nothing
        raise FieldError("sub_id", sub_id, f"must be at most {SUB_ID_LENGTH} characters")
    filters = Filters(
        program_id=an_id("program_id"),
        traffic_source_id=an_id("traffic_source_id"),
        status=status,
        day_from=optional_day(args, "from"),
        day_to=optional_day(args, "to"),
        sub_id=sub_id or None,
        before_id=an_id("before"),
    )
    if filters.day_from and filters.day_to and filters.day_to < filters.day_from:
        raise FieldError("to", filters.day_to.isoformat(), "must not be before from")
    return filters


def _first_event() -> Any:
    return (
        select(func.min(TransactionEvent.id))
        .where(TransactionEvent.transaction_id == Transaction.id)
        .scalar_subquery()
        .label("first_event_id")
    )


def _conditions(publisher_id: int, filters: Filters) -> list[Any]:
    conditions: list[Any] = [Transaction.publisher_id == publisher_id]
    if filters.program_id is not None:
        conditions.append(Transaction.program_id == filters.program_id)
    if filters.traffic_source_id is not None:
        conditions.append(Transaction.traffic_source_id == filters.traffic_source_id)
    if filters.status is not None:
        conditions.append(Transaction.status == filters.status)
    if filters.day_from is not None:
        conditions.append(Transaction.event_time >= datetime.combine(filters.day_from, time(), UTC))
    if filters.day_to is not None:
        end = end_of_day(filters.day_to)
        conditions.append(Transaction.event_time < end)
    if filters.sub_id is not None:
        conditions.append(or_(*(getattr(Click, name) == filters.sub_id for name in SUB_IDS)))
    return conditions


def _query(publisher_id: int, filters: Filters) -> Select[*tuple[Any, ...]]:
    query = (
        select(
            Transaction,
            _first_event(),
            Program.name.label("program_name"),
            TrafficSource.name.label("traffic_source_name"),
            *(getattr(Click, name).label(name) for name in SUB_IDS),
        )
        .join(Program, Program.id == Transaction.program_id)
        .outerjoin(TrafficSource, TrafficSource.id == Transaction.traffic_source_id)
        .outerjoin(Click, Click.id == Transaction.click_pk)
        .where(*_conditions(publisher_id, filters))
        .order_by(Transaction.id.desc())
    )
    if filters.before_id is not None:
        query = query.where(Transaction.id < filters.before_id)
    return query


def _postbacks(session: Session, transaction_ids: Sequence[int]) -> dict[int, Postbacks]:
    if not transaction_ids:
        return {}
    rows = session.execute(
        select(Delivery.transaction_id, Delivery.state, func.count())
        .where(Delivery.transaction_id.in_(transaction_ids))
        .group_by(Delivery.transaction_id, Delivery.state)
    )
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for transaction_id, state, count in rows:
        counts[transaction_id][state] = count
    return {
        transaction_id: Postbacks(
            **{k: v for k, v in by_state.items() if k in ("succeeded", "failed", "pending")}
        )
        for transaction_id, by_state in counts.items()
    }


def search(session: Session, publisher_id: int, filters: Filters, limit: int = PAGE_SIZE) -> list[Conversion]:
    rows = session.execute(_query(publisher_id, filters).limit(limit)).all()
    postbacks = _postbacks(session, [row.Transaction.id for row in rows])
    return [
        Conversion(
            id=sale.id,
            sales_id=sale.sales_id,
            first_event_id=row.first_event_id,
            order_number=sale.order_number,
            program_id=sale.program_id,
            program_name=row.program_name,
            traffic_source_id=sale.traffic_source_id,
            traffic_source_name=row.traffic_source_name,
            event=sale.event_type,
            status=sale.status,
            sale_amount=sale.sale_amount,
            commission=sale.commission,
            currency=sale.currency,
            sub_ids={name: getattr(row, name) for name in SUB_IDS},
            event_time=sale.event_time,
            recorded_at=sale.created_at,
            postbacks=postbacks.get(sale.id, Postbacks()),
        )
        for row in rows
        for sale in (row.Transaction,)
    ]


def every(session: Session, publisher_id: int, filters: Filters) -> Iterator[Conversion]:
    """Every matching conversion, newest first, fetched a batch at a time (exports of long ranges)."""
    before = filters.before_id
    while True:
        batch = search(session, publisher_id, replace(filters, before_id=before), EXPORT_BATCH)
        yield from batch
        if len(batch) < EXPORT_BATCH:
            return
        before = batch[-1].id


@dataclass
class Total:
    """Conversions and commission (by status) of one day, program or traffic source, in one currency."""

    key: str
    label: str
    currency: str
    conversions: int = 0
    sale_amount: Decimal = Decimal(0)
    commission: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(STATUSES, Decimal(0)))

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "currency": self.currency,
            "conversions": self.conversions,
            "sale_amount": in_units(self.sale_amount, self.currency),
            "commission": {
                status: in_units(amount, self.currency) for status, amount in self.commission.items()
            },
        }


@dataclass
class Totals:
    by_day: list[Total]
    by_program: list[Total]
    by_traffic_source: list[Total]
    overall: list[Total]  # one per currency

    def as_json(self) -> dict[str, Any]:
        return {
            name: [total.as_json() for total in getattr(self, name)]
            for name in ("overall", "by_day", "by_program", "by_traffic_source")
        }


def _groups(session: Session, publisher_id: int, filters: Filters) -> Iterator[tuple[Any, ...]]:
    """(UTC day, program id, program, source id, source, status, currency, conversions, sales, commission)
    per group of matching conversions.

    PostgreSQL groups and sums (NUMERIC is exact): a page costs one aggregate however many sales match.
    SQLite keeps money as exact decimal text and its SUM is a float, so there each row is a group of one,
    summed here; SQLite carries no speed goal.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    day = func.date(func.timezone("UTC", Transaction.event_time)) if postgres else Transaction.event_time
    keys = (
        day,
        Transaction.program_id,
        Program.name,
        Transaction.traffic_source_id,
        TrafficSource.name,
        Transaction.status,
        Transaction.currency,
    )
    measures = (
        (func.count(), func.sum(Transaction.sale_amount), func.sum(Transaction.commission))
        if postgres
        else (literal(1), Transaction.sale_amount, Transaction.commission)
    )
    query = (
        select(*keys, *measures)
        .join(Program, Program.id == Transaction.program_id)
        .outerjoin(TrafficSource, TrafficSource.id == Transaction.traffic_source_id)
        .outerjoin(Click, Click.id == Transaction.click_pk)
        .where(*_conditions(publisher_id, filters))
    )
    if postgres:
        query = query.group_by(*keys)
    for row in session.execute(query.execution_options(yield_per=EXPORT_BATCH)):
        when = row[0]
        utc_day = when.isoformat() if postgres else when.astimezone(UTC).date().isoformat()
        yield (utc_day, *row[1:])


def totals(session: Session, publisher_id: int, filters: Filters) -> Totals:
    """Totals of every matching conversion (the cursor is ignored: totals are of the set, not the page)."""
    by_day: dict[tuple[str, str], Total] = {}
    by_program: dict[tuple[str, str], Total] = {}
    by_source: dict[tuple[str, str], Total] = {}
    overall: dict[tuple[str, str], Total] = {}
    for day, program_id, program, source_id, source, status, currency, count, amount, commission in _groups(
        session, publisher_id, filters
    ):
        groups = (
            (by_day, day, day),
            (by_program, str(program_id), program),
            (by_source, str(source_id or ""), source or "No traffic source"),
            (overall, "all", "All"),
        )
        for table, key, label in groups:
            total = table.get((key, currency))
            if total is None:
                total = table[(key, currency)] = Total(key, label, currency)
            total.conversions += int(count)
            total.sale_amount += Decimal(amount)
            total.commission[status] += Decimal(commission)
    return Totals(
        # Newest day first; within a day, currencies in order (two stable sorts).
        by_day=sorted(sorted(by_day.values(), key=lambda t: t.currency), key=lambda t: t.key, reverse=True),
        by_program=sorted(by_program.values(), key=lambda t: (t.label.lower(), t.currency)),
        by_traffic_source=sorted(by_source.values(), key=lambda t: (t.label.lower(), t.currency)),
        overall=sorted(overall.values(), key=lambda t: t.currency),
    )


def as_json(conversion: Conversion) -> dict[str, Any]:
    return {
        "sales_id": conversion.sales_id,
        "txid": conversion.txid,
        "order_number": conversion.order_number,
        "program_id": conversion.program_id,
        "program_name": conversion.program_name,
        "traffic_source_id": conversion.traffic_source_id,
        "event": conversion.event,
        "status": conversion.status,
        "sale_amount": in_units(conversion.sale_amount, conversion.currency),
        "commission": in_units(conversion.commission, conversion.currency),
        "currency": conversion.currency,
        "sub_ids": conversion.sub_ids,
        "event_time": _iso(conversion.event_time),
        "recorded_at": _iso(conversion.recorded_at),
        "postbacks": {
            "outcome": conversion.postbacks.outcome,
            "succeeded": conversion.postbacks.succeeded,
            "failed": conversion.postbacks.failed,
            "pending": conversion.postbacks.pending,
        },
    }


def in_units(amount: Decimal, currency: str) -> str:
    """An amount at its currency's decimals: PostgreSQL keeps four (10.0000), a sum may have none (0)."""
    return str(amount.quantize(minor_unit(currency)))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
