"""An advertiser's own transactions: filtered, newest first, keyset-paged; one with its history.

The publisher is named (the advertiser pays it), its traffic sources and sub ids are not: they are the
publisher's own business (`tests/security/test_authz_matrix.py` watches for them).

Only transactions of the advertiser's programs are ever read: another advertiser's sales id answers None
(a 404, like a missing one), and a filter naming another advertiser's program finds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from dispatcher.ledger import fields, ids
from dispatcher.ledger.reports import EVENTS, ORDER_NUMBER_LENGTH, STATUSES
from dispatcher.models import Click, Program, Transaction, TransactionEvent
from dispatcher.models.types import MAX_ID
from dispatcher.validation import FieldError, end_of_day, only_known, positive_id

PAGE_SIZE = 50
PARAMETERS = ("order_number", "status", "event", "program_id", "from", "to", "before")


@dataclass(frozen=True)
class Filters:
    order_number: str | None = None
    status: str | None = None
    event: str | None = None
    program_id: int | None = None
    since: datetime | None = None  # the sale's event time, at or after
    until: datetime | None = None  # before this (exclusive): `to` is inclusive, a date as a whole day
    before_id: int | None = None  # keyset paging: rows with a smaller id


def parse_filters(args: Mapping[str, str]) -> Filters:
    """Query parameters to filters; an unknown parameter or a bad value is a `FieldError` naming it (a
    misspelt filter would otherwise list every transaction as if it had been applied)."""
    only_known(args, PARAMETERS, "filter")
    order_number = _blank_is_none(args.get("order_number"))
    return Filters(
        order_number=None
        if order_number is None
        else fields.text("order_number", order_number, max_length=ORDER_NUMBER_LENGTH),
        status=_choice(args, "status", STATUSES),
        event=_choice(args, "event", EVENTS),
        program_id=_id(args, "program_id"),
        since=_moment(args, "from", end=False),
        until=_moment(args, "to", end=True),
        before_id=_id(args, "before"),
    )


def search(
    session: Session, advertiser_id: int, filters: Filters, limit: int = PAGE_SIZE
) -> list[Row[*tuple[Any, ...]]]:
    return list(session.execute(_query(advertiser_id, filters).limit(limit)))


def get(
    session: Session, advertiser_id: int, sales_id: str
) -> tuple[Row[*tuple[Any, ...]], list[TransactionEvent]] | None:
    """The advertiser's transaction with its events, oldest first; None for anyone else's or a missing one."""
    if not ids.could_be_sales_id(sales_id):
        return None
    row = session.execute(_SELECT.where(Transaction.sales_id == sales_id, _own(advertiser_id))).first()
    if row is None:
        return None
    events = session.scalars(
        select(TransactionEvent)
        .where(TransactionEvent.transaction_id == row.id)
        .order_by(TransactionEvent.id)
    )
    return row, list(events)


def count(session: Session, advertiser_id: int, filters: Filters, *, up_to_id: int | None = None) -> int:
    """How many of the advertiser's transactions match (ids up to `up_to_id`, when given)."""
    query = _query(advertiser_id, filters).order_by(None)
    if up_to_id is not None:
        query = query.where(Transaction.id <= up_to_id)
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def newest_id(session: Session) -> int:
    """The id of the newest transaction of anyone: a bound that sales recorded from now on are above."""
    return int(session.scalar(select(func.max(Transaction.id))) or 0)


def matching_after(
    session: Session, advertiser_id: int, filters: Filters, after_id: int, up_to_id: int, limit: int
) -> list[tuple[int, str]]:
    """(id, sales id) of the next `limit` matching transactions above `after_id`, oldest first."""
    query = (
        select(Transaction.id, Transaction.sales_id)
        .where(
            Transaction.id.in_(
                _query(advertiser_id, filters).order_by(None).with_only_columns(Transaction.id)
            )
        )
        .where(Transaction.id > after_id, Transaction.id <= up_to_id)
        .order_by(Transaction.id)
        .limit(limit)
    )
    return [(row.id, row.sales_id) for row in session.execute(query)]


_SELECT = select(
    Transaction.id,
    Transaction.sales_id,
    Transaction.order_number,
    Transaction.program_id,
    Transaction.event_type,
    Transaction.status,
    Transaction.sale_amount,
    Transaction.commission,
    Transaction.currency,
    Transaction.event_time,
    Transaction.publisher_id,
    Transaction.channel,
    Transaction.created_at,
    Transaction.updated_at,
    Click.click_id,
).outerjoin(Click, Click.id == Transaction.click_pk)


def _own(advertiser_id: int) -> Any:
    return Transaction.program_id.in_(select(Program.id).where(Program.advertiser_id == advertiser_id))


def _query(advertiser_id: int, filters: Filters) -> Select[*tuple[Any, ...]]:
    query = _SELECT.where(_own(advertiser_id)).order_by(Transaction.id.desc())
    if filters.order_number is not None:
        query = query.where(Transaction.order_number == filters.order_number)
    if filters.status is not None:
        query = query.where(Transaction.status == filters.status)
    if filters.event is not None:
        query = query.where(Transaction.event_type == filters.event)
    if filters.program_id is not None:
        query = query.where(Transaction.program_id == filters.program_id)
    if filters.since is not None:
        query = query.where(Transaction.event_time >= filters.since)
    if filters.until is not None:
        query = query.where(Transaction.event_time < filters.until)
    if filters.before_id is not None:
        query = query.where(Transaction.id < filters.before_id)
    return query


def _blank_is_none(raw: str | None) -> str | None:
    return None if raw is None or not raw.strip() else raw


def _choice(args: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    raw = _blank_is_none(args.get(name))
    return None if raw is None else fields.choice(name, raw, choices, "")


def _id(args: Mapping[str, str], name: str) -> int | None:
    raw = _blank_is_none(args.get(name))
    if raw is None:
        return None
    number = positive_id(name, raw.strip())
    if number > MAX_ID:  # BIGINT: nobody's id, and PostgreSQL would refuse to compare with it
        raise FieldError(name, raw, "is not an id (too large)")
    return number


def _moment(args: Mapping[str, str], name: str, *, end: bool) -> datetime | None:
    """A date (`to` includes the whole day) or an ISO 8601 time (UTC unless it says otherwise)."""
    raw = _blank_is_none(args.get(name))
    if raw is None:
        return None
    cleaned = raw.strip()
    try:
        if len(cleaned) == 10:
            day = date.fromisoformat(cleaned)
            return end_of_day(day) if end else datetime.combine(day, time(), UTC)
        moment = datetime.fromisoformat(cleaned)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        # `to` is "on or before": the bound is exclusive, and times are kept to the microsecond.
        return moment + timedelta(microseconds=1) if end else moment
    except OverflowError:  # past the last moment there is, in UTC: a bad value, never "no filter"
        raise FieldError(name, raw, "is past the last date there is") from None
    except ValueError:
        raise FieldError(
            name, raw, "must be a date like 2026-11-01 or a time like 2026-11-01T14:30:00Z"
        ) from None
