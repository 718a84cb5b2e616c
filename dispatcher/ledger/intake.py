"""The one way transactions come in: `record_sales`, for every channel (API, S2S, pixel, CSV).

A report is checked (values, then click or clickless attribution, then commission), and every good one is
written in one database transaction with its first event and the deliveries it fires (the outbox). The same
(program, order number, event) reported again is a duplicate: the original is answered, nothing is written.
The unique constraint decides, not a prior SELECT, so concurrent identical reports make exactly one
transaction; a batch that meets a concurrent duplicate is redone report by report.

A report on a connection (the API, S2S and pixel channels: the driver connection of
`Database.driver(writes=True)`, see `dispatcher.driver_sql`; or a Core `Connection`) is read and written in
one database transaction with one commit; the driver connection takes one report at a time (it runs no IN
lists). On a session (CSV batches, the console, tests) the reads end with the session's transaction and the
write runs on a connection of its own, begun as a writer: on SQLite a transaction that has read cannot always
become a writer (it fails at once, without waiting, when another writer committed meanwhile), so a writer
takes the write lock at BEGIN (`dispatcher.db.connect(writes=True)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dispatcher import instruments
from dispatcher.db import Db, connect, fetch
from dispatcher.driver_sql import DriverConnection
from dispatcher.ledger import fields, ids, reports, tables
from dispatcher.ledger.attribution import Attribution, ClickRead, attribute, attribute_with_postbacks
from dispatcher.ledger.commission import commission
from dispatcher.ledger.outbox import (
    FiredEvent,
    PostbackFilter,
    active_postbacks,
    create_deliveries,
)
from dispatcher.ledger.reports import CheckedReport, SaleReport
from dispatcher.ledger.results import Recorded, Rejected
from dispatcher.ledger.rows import inserted_ids
from dispatcher.models import Delivery, EventKind, Transaction, TransactionEvent
from dispatcher.models.types import utcnow
from dispatcher.validation import FieldError

Key = tuple[int, str, str]  # program, order number, event type: the business key


@dataclass(frozen=True)
class NewSale:
    key: Key
    attribution: Attribution
    sale_amount: Decimal
    commission: Decimal
    currency: str
    status: str
    event_time: datetime
    click_values: dict[str, str]  # a clickless sale's sub ids, IP, user agent: recorded as its click


def record_sales(
    db: Db,
    advertiser_id: int,
    sale_reports: Sequence[SaleReport | CheckedReport],
    channel: str,
    *,
    now: datetime | None = None,
    click_read: ClickRead | None = None,
    restating: bool = False,
) -> list[Recorded | Rejected]:
    """One outcome per report, in order. Commits; the caller hands `new_delivery_ids` to RQ afterwards.

    `db` is a session, a Core connection or the hot paths' driver connection (see the module docstring).
    A single report's click may have been read already (`click_read`, used when it is the report's click).
    A report may come checked already (`reports.check`).
    `restating` (S2S and CSV): a report may say `declined` or `reversed`, which only a recorded transaction
    can become: it is answered as a duplicate, for `dispatcher.ledger.restatements` to change, or refused
    when the order is not recorded. A new transaction is still born pending or approved.
    """
    moment = now or utcnow()
    statuses = reports.STATUSES if restating else reports.INITIAL_STATUSES
    outcomes: list[Recorded | Rejected | None] = [None] * len(sale_reports)
    checked: dict[int, CheckedReport] = {}
    for index, raw in enumerate(sale_reports):
        try:
            checked[index] = raw if isinstance(raw, CheckedReport) else reports.check(raw, statuses)
        except FieldError as error:
            outcomes[index] = Rejected(error)
    postbacks: list[PostbackFilter] | None = None  # read with the click, or below
    only = next(iter(checked.values())) if len(checked) == 1 else None
    if only is not None and only.click_id is not None:
        attribution, postbacks = attribute_with_postbacks(db, advertiser_id, only, click_read)
        attributions: list[Attribution | FieldError] = [attribution]
    else:
        attributions = attribute(db, advertiser_id, list(checked.values()))
    sales: dict[int, NewSale] = {}
    for (index, report), attribution in zip(checked.items(), attributions, strict=True):
        try:
            if isinstance(attribution, FieldError):
                raise attribution
            sales[index] = _priced(report, attribution, moment)
        except FieldError as error:
            outcomes[index] = Rejected(error)
    first_of: dict[Key, int] = {}
    for index, sale in sales.items():
        first_of.setdefault(sale.key, index)
    if postbacks is None:
        postbacks = active_postbacks(db, {sale.attribution.publisher_id for sale in sales.values()})
    fresh = [sales[index] for index in first_of.values()]
    # Batches look for earlier reports first, so a re-uploaded file is not redone line by line; so does a
    # report that only a recorded transaction can take.
    closing = [sale for sale in fresh if sale.status not in reports.INITIAL_STATUSES]
    known = existing(db, [sale.key for sale in fresh]) if len(fresh) > 1 or closing else {}
    unrecorded = {sale.key for sale in closing if sale.key not in known}
    new = [sale for sale in fresh if sale.key not in known and sale.key not in unrecorded]
    written = {**known, **_written(db, new, channel, moment, postbacks)}
    for index, sale in sales.items():
        if sale.key in unrecorded:
            outcomes[index] = Rejected(_not_recorded(sale))
            continue
        result = written[sale.key]
        if first_of[sale.key] != index:  # the same order twice in one batch: the second is a duplicate
            result = _as_duplicate(result)
        outcomes[index] = result
    instruments.sales_recorded(channel, sum(not result.duplicate for result in written.values()))
    return [outcome for outcome in outcomes if outcome is not None]


def _not_recorded(sale: NewSale) -> FieldError:
    _, order_number, event_type = sale.key
    return FieldError(
        "status",
        sale.status,
        f"a new transaction is pending or approved; order {order_number!r} ({event_type}) is not recorded, "
        f"so it cannot become {sale.status}",
    )


def _priced(report: CheckedReport, attribution: Attribution, now: datetime) -> NewSale:
    program = attribution.program
    currency = report.currency or program.currency
    amount = fields.in_currency("sale_amount", report.sale_amount, currency, report.raw_sale_amount)
    event_time = reports.event_time(report, now, attribution.click_time)
    return NewSale(
        key=(program.id, report.order_number, report.event_type),
        attribution=attribution,
        sale_amount=amount,
        commission=commission(program.rule, amount, currency, report.raw_commission),
        currency=currency,
        status=report.status,
        event_time=event_time,
        click_values=report.click_values,
    )


def _written(
    db: Db,
    sales: list[NewSale],
    channel: str,
    now: datetime,
    postbacks: list[PostbackFilter],
) -> dict[Key, Recorded]:
    """Write the sales: in the connection's transaction, or after the session's (module docstring)."""
    if not isinstance(db, Session):
        return _write(db, sales, channel, now, postbacks)
    db.commit()
    if not sales:
        return {}
    with connect(db.get_bind().engine, writes=True) as connection:
        return _write(connection, sales, channel, now, postbacks)


def _write(
    connection: Connection | DriverConnection,
    sales: list[NewSale],
    channel: str,
    now: datetime,
    postbacks: list[PostbackFilter],
) -> dict[Key, Recorded]:
    """Insert the sales and commit. The unique constraint on the business key decides between concurrent
    identical reports: the loser rolls back and answers the winner's transaction as a duplicate."""
    try:
        written = _insert(connection, sales, channel, now, postbacks) if sales else {}
        connection.commit()
        return written
    except IntegrityError:
        connection.rollback()
    if len(sales) > 1:  # which one was recorded meanwhile: each on its own
        redone: dict[Key, Recorded] = {}
        for sale in sales:
            redone.update(_write(connection, [sale], channel, now, postbacks))
        return redone
    found = existing(connection, [sale.key for sale in sales])
    connection.commit()
    if len(found) != len(sales):
        raise DuplicateLost(sales[0].key)
    return found


class DuplicateLost(RuntimeError):
    """The insert broke a unique constraint, yet no transaction has the key: a fault, not the advertiser's."""


def _insert(
    connection: Connection | DriverConnection,
    sales: list[NewSale],
    channel: str,
    now: datetime,
    postbacks: list[PostbackFilter],
) -> dict[Key, Recorded]:
    sales_ids = [ids.new_sales_id() for _ in sales]
    click_pks = _clicks_of_clickless(connection, sales)
    transaction_rows = [
        {**_transaction_row(sale, sales_id, channel, now), "click_pk": click_pk}
        for sale, sales_id, click_pk in zip(sales, sales_ids, click_pks, strict=True)
    ]
    by_sales_id = inserted_ids(connection, tables.transactions, transaction_rows, "sales_id")
    transaction_ids = [by_sales_id[(sales_id,)] for sales_id in sales_ids]
    event_rows = [
        {**_event_row(sale, channel, now), "transaction_id": transaction_id}
        for sale, transaction_id in zip(sales, transaction_ids, strict=True)
    ]
    by_transaction = inserted_ids(connection, tables.transaction_events, event_rows, "transaction_id")
    event_ids = [by_transaction[(transaction_id,)] for transaction_id in transaction_ids]
    fired = [
        _fired(sale, event_id, transaction_id)
        for sale, transaction_id, event_id in zip(sales, transaction_ids, event_ids, strict=True)
    ]
    deliveries = create_deliveries(connection, fired, postbacks=postbacks, now=now)
    return {
        sale.key: _recorded(sale, sales_id, deliveries[event.event_id])
        for sale, sales_id, event in zip(sales, sales_ids, fired, strict=True)
    }


def _clicks_of_clickless(connection: Connection | DriverConnection, sales: list[NewSale]) -> list[int | None]:
    """Each sale's click: its own, or for a clickless sale that gives sub ids, IP or user agent, a click
    recorded now with them (at the sale's time, credited as the sale is), in the sale's database
    transaction. Postbacks and searches read sub ids from a sale's click, whatever channel brought them."""
    rows = {
        index: {
            "click_id": ids.new_click_id(),
            "program_id": sale.key[0],
            "publisher_id": sale.attribution.publisher_id,
            "traffic_source_id": sale.attribution.traffic_source_id,
            "created_at": sale.event_time,
            # Every row with every column: rows inserted together must name the same ones.
            **{name: sale.click_values.get(name) for name in reports.CLICK_VALUE_NAMES},
        }
        for index, sale in enumerate(sales)
        if sale.attribution.click_pk is None and sale.click_values
    }
    made = inserted_ids(connection, tables.clicks, list(rows.values()), "click_id") if rows else {}
    return [
        made[(rows[index]["click_id"],)] if index in rows else sale.attribution.click_pk
        for index, sale in enumerate(sales)
    ]


def _event_row(sale: NewSale, channel: str, now: datetime) -> dict[str, Any]:
    """The transaction's first event, less its transaction's id."""
    return {
        "kind": EventKind.CREATED.value,
        "status": sale.status,
        "sale_amount": sale.sale_amount,
        "commission": sale.commission,
        "channel": channel,
        "occurred_at": sale.event_time,
        "created_at": now,
    }


def _fired(sale: NewSale, event_id: int, transaction_id: int) -> FiredEvent:
    return FiredEvent(
        event_id=event_id,
        transaction_id=transaction_id,
        publisher_id=sale.attribution.publisher_id,
        traffic_source_id=sale.attribution.traffic_source_id,
        program_id=sale.key[0],
        trigger=sale.key[2],  # a first report fires as its type: sale or lead
        status=sale.status,
    )


def _recorded(sale: NewSale, sales_id: str, delivery_ids: Sequence[int]) -> Recorded:
    return Recorded(
        sales_id=sales_id,
        status=sale.status,
        commission=sale.commission,
        currency=sale.currency,
        deliveries=len(delivery_ids),
        new_delivery_ids=tuple(delivery_ids),
        sale_amount=sale.sale_amount,
    )


def _transaction_row(sale: NewSale, sales_id: str, channel: str, now: datetime) -> dict[str, Any]:
    program_id, order_number, event_type = sale.key
    return {
        "sales_id": sales_id,
        "program_id": program_id,
        "click_pk": sale.attribution.click_pk,
        "publisher_id": sale.attribution.publisher_id,
        "traffic_source_id": sale.attribution.traffic_source_id,
        "order_number": order_number,
        "sale_amount": sale.sale_amount,
        "commission": sale.commission,
        "currency": sale.currency,
        "event_type": event_type,
        "status": sale.status,
        "channel": channel,
        "event_time": sale.event_time,
        "created_at": now,
        "updated_at": now,
    }


def existing(db: Db, keys: Sequence[Key]) -> dict[Key, Recorded]:
    """The transactions already recorded under these business keys, answered as duplicates."""
    if len(keys) == 1:
        program_id, order_number, event_type = keys[0]
        found = fetch(
            db,
            _RECORDED_ONE,
            {"program_id": program_id, "order_number": order_number, "event_type": event_type},
        )
    else:
        query = _RECORDED.where(
            # Two plain IN lists (the order number is indexed), narrowed to exact keys below: portable, and
            # far cheaper to build for a chunk of hundreds than as many OR-ed conditions.
            Transaction.order_number.in_({order for _, order, _ in keys}),
            Transaction.program_id.in_({program for program, _, _ in keys}),
        )
        found = fetch(db, query, {})
    wanted = set(keys)
    return {
        (row.program_id, row.order_number, row.event_type): Recorded(
            sales_id=row.sales_id,
            status=row.status,
            commission=row.commission,
            currency=row.currency,
            deliveries=row.deliveries,
            duplicate=True,
            sale_amount=row.sale_amount,
        )
        for row in found
        if (row.program_id, row.order_number, row.event_type) in wanted
    }


# Found through deliveries' transaction_id (indexed); deliveries have no index on the event alone.
_FIRST_DELIVERIES = (
    select(func.count(Delivery.id))
    .join(TransactionEvent, TransactionEvent.id == Delivery.transaction_event_id)
    .where(
        Delivery.transaction_id == Transaction.id,
        TransactionEvent.kind == EventKind.CREATED.value,
    )
    .scalar_subquery()
)
_RECORDED = select(
    Transaction.program_id,
    Transaction.order_number,
    Transaction.event_type,
    Transaction.sales_id,
    Transaction.status,
    Transaction.sale_amount,
    Transaction.commission,
    Transaction.currency,
    _FIRST_DELIVERIES.label("deliveries"),
)
_RECORDED_ONE = _RECORDED.where(
    Transaction.program_id == bindparam("program_id"),
    Transaction.order_number == bindparam("order_number"),
    Transaction.event_type == bindparam("event_type"),
)


def _as_duplicate(result: Recorded) -> Recorded:
    return replace(result, duplicate=True)
