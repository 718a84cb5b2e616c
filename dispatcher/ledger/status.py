"""Status changes and amount adjustments of recorded transactions: each is an event that may fire postbacks.

    pending  -> approved | declined
    approved -> reversed
    pending, approved: the sale amount may be adjusted (the commission follows the program's rule, or the
    advertiser's figure where the program allows it)

A request that changes the status records one event of that kind, carrying any new amount; a request that only
changes the amount records an `adjusted` event. The UPDATE is guarded by the status it was read with, so two
concurrent changes cannot both leave `pending`.

A transaction is named by its sales id (`change_status`) or, as advertisers know it, by its order number
(`change_status_by_order`: the event, sale by default, and the program when the advertiser has the order in
several). `restate` is what a repeated S2S or CSV report does: it changes only what differs from the
transaction as it is now, and a report that restates nothing is a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, insert, select, update
from sqlalchemy.orm import Session

from dispatcher.ledger import fields, ids
from dispatcher.ledger.commission import CommissionRule, commission, rounded
from dispatcher.ledger.errors import StatusConflict, TransactionNotFound
from dispatcher.ledger.outbox import FiredEvent, create_deliveries
from dispatcher.ledger.reports import EVENTS, ORDER_NUMBER_LENGTH
from dispatcher.models import EventKind, EventType, Program, Transaction, TransactionEvent, TransactionStatus
from dispatcher.models.types import utcnow
from dispatcher.validation import FieldError

PENDING, APPROVED = TransactionStatus.PENDING.value, TransactionStatus.APPROVED.value
DECLINED, REVERSED = TransactionStatus.DECLINED.value, TransactionStatus.REVERSED.value
TRANSITIONS: dict[str, tuple[str, ...]] = {PENDING: (APPROVED, DECLINED), APPROVED: (REVERSED,)}
ADJUSTABLE = (PENDING, APPROVED)
TARGETS = (APPROVED, DECLINED, REVERSED)


@dataclass(frozen=True)
class StatusChange:
    """Raw values of `POST /api/v1/transactions/<sales_id>/status`."""

    status: object = None
    sale_amount: object = None
    commission: object = None


@dataclass(frozen=True)
class Changed:
    sales_id: str
    kind: str
    status: str
    sale_amount: Decimal
    commission: Decimal
    currency: str
    new_delivery_ids: tuple[int, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "sales_id": self.sales_id,
            "event": self.kind,
            "status": self.status,
            "sale_amount": str(rounded(self.sale_amount, self.currency)),
            "commission": str(rounded(self.commission, self.currency)),
            "currency": self.currency,
            "deliveries": len(self.new_delivery_ids),
        }


@dataclass(frozen=True)
class OrderRef:
    """Raw values naming a transaction by its order number (`POST /api/v1/transactions/status`)."""

    order_number: object = None
    event: object = None  # default: sale
    program_id: object = None  # needed only when the order number is in several of the advertiser's programs


Loader = Callable[[], Any]


def change_status(
    session: Session,
    advertiser_id: int,
    sales_id: str,
    change: StatusChange,
    channel: str,
    *,
    now: datetime | None = None,
) -> Changed:
    """Record the change with its event and deliveries, and commit; raises FieldError, 404 or 409 errors."""
    load = _by_sales_id(session, advertiser_id, sales_id)
    changed = _apply(session, load, change, channel, now or utcnow())
    assert changed is not None  # only a restatement may change nothing
    return changed


def change_status_by_order(
    session: Session,
    advertiser_id: int,
    order: OrderRef,
    change: StatusChange,
    channel: str,
    *,
    now: datetime | None = None,
) -> Changed:
    """`change_status` for the transaction the order number (event, program) names."""
    changed = _apply(session, _by_order(session, advertiser_id, order), change, channel, now or utcnow())
    assert changed is not None
    return changed


def restate(
    session: Session,
    advertiser_id: int,
    sales_id: str,
    change: StatusChange,
    channel: str,
    *,
    now: datetime | None = None,
) -> Changed | None:
    """A repeated report's status and amount, applied where they differ from the transaction as it is now
    (read just before; the change's UPDATE is guarded by the status read, as every change's); None when they
    restate it as it is."""
    load = _by_sales_id(session, advertiser_id, sales_id)
    return _apply(session, load, change, channel, now or utcnow(), restating=True)


def _apply(
    session: Session,
    load: Loader,
    change: StatusChange,
    channel: str,
    moment: datetime,
    *,
    restating: bool = False,
) -> Changed | None:
    if not restating:
        _target(change)  # a bad status is refused before anything is read
    row = load()
    current = row.status
    if restating:
        differs = _differences(row, change)
        if differs is None:
            session.commit()  # ends the read transaction, as a change does below
            return None
        change = differs
    target = _target(change)
    kind = _kind(current, target, change)
    amount, earned = row.sale_amount, row.commission
    if not fields.is_blank(change.sale_amount) or not fields.is_blank(change.commission):
        raw_amount = row.sale_amount if fields.is_blank(change.sale_amount) else change.sale_amount
        amount = fields.in_currency(
            "sale_amount", fields.amount("sale_amount", raw_amount), row.currency, raw_amount
        )
        earned = commission(_rule(row), amount, row.currency, change.commission)
    new_status = target or current
    # The read transaction ends before writing (see dispatcher.ledger.intake); the write transaction starts
    # with its UPDATE, which takes SQLite's write lock (waiting for it, unlike a read turned writer).
    session.commit()
    event_id, deliveries = _write(session, row, kind, new_status, amount, earned, channel, moment)
    if event_id is None:  # the status changed since it was read: decide again against the new one
        return _apply(session, load, change, channel, moment, restating=restating)
    return Changed(row.sales_id, kind, new_status, amount, earned, row.currency, tuple(deliveries))


def _differences(row: Any, change: StatusChange) -> StatusChange | None:
    """The part of a restating report that differs from `row`; None when nothing does. A status the report
    leaves out is no change; `pending` cannot be gone back to, so it conflicts with any other status."""
    status = None if fields.is_blank(change.status) else change.status
    if isinstance(status, str) and status.strip().lower() == row.status:
        status = None
    elif isinstance(status, str) and status.strip().lower() == PENDING:
        raise StatusConflict(
            row.status, "status", f"{with_article(row.status)} transaction cannot become {PENDING}"
        )
    amount = change.sale_amount
    try:
        if not fields.is_blank(amount) and fields.amount("sale_amount", amount) == row.sale_amount:
            amount = None
    except FieldError:
        pass  # a bad amount differs: the change refuses it, naming it
    if status is None and fields.is_blank(amount):
        return None
    return replace(change, status=status, sale_amount=amount)


def _write(
    session: Session,
    row: Any,
    kind: str,
    new_status: str,
    amount: Decimal,
    earned: Decimal,
    channel: str,
    moment: datetime,
) -> tuple[int | None, list[int]]:
    """The guarded UPDATE, the event and its deliveries, committed; (None, []) if the status moved since."""
    guarded = (
        update(Transaction)
        .where(Transaction.id == row.id, Transaction.status == row.status)
        .values(status=new_status, sale_amount=amount, commission=earned, updated_at=moment)
    )
    if session.execute(guarded).rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return None, []
    event_id = session.scalars(
        insert(TransactionEvent).returning(TransactionEvent.id),
        [
            {
                "transaction_id": row.id,
                "kind": kind,
                "status": new_status,
                "sale_amount": amount,
                "commission": earned,
                "channel": channel,
                "occurred_at": moment,
                "created_at": moment,
            }
        ],
    ).one()
    fired = FiredEvent(
        event_id=event_id,
        transaction_id=row.id,
        publisher_id=row.publisher_id,
        traffic_source_id=row.traffic_source_id,
        program_id=row.program_id,
        trigger=kind,
        status=new_status,
    )
    deliveries = create_deliveries(session, [fired], now=moment)[event_id]
    session.commit()
    return event_id, deliveries


def _target(change: StatusChange) -> str | None:
    if fields.is_blank(change.status):
        if fields.is_blank(change.sale_amount) and fields.is_blank(change.commission):
            raise FieldError(
                "status", change.status, "is required: approved, declined or reversed (or give sale_amount)"
            )
        return None
    return fields.choice("status", change.status, TARGETS, "")


def _kind(current: str, target: str | None, change: StatusChange) -> str:
    if target is not None and target != current:
        if target not in TRANSITIONS.get(current, ()):
            raise StatusConflict(
                current, "status", f"{with_article(current)} transaction cannot become {target}"
            )
        return target
    if fields.is_blank(change.sale_amount) and fields.is_blank(change.commission):
        raise StatusConflict(current, "status", f"the transaction is already {current}")
    if current not in ADJUSTABLE:
        raise StatusConflict(
            current, "sale_amount", f"{with_article(current)} transaction cannot be adjusted"
        )
    return EventKind.ADJUSTED.value


_ROW = select(
    Transaction.id,
    Transaction.sales_id,
    Transaction.status,
    Transaction.sale_amount,
    Transaction.commission,
    Transaction.currency,
    Transaction.publisher_id,
    Transaction.traffic_source_id,
    Transaction.program_id,
    Program.commission_type,
    Program.commission_value,
    Program.currency.label("program_currency"),
    Program.allow_advertiser_commission,
).join(Program, Program.id == Transaction.program_id)


def _by_sales_id(session: Session, advertiser_id: int, sales_id: str) -> Loader:
    def load() -> Any:
        if not ids.could_be_sales_id(sales_id):
            raise TransactionNotFound(sales_id if len(sales_id) <= 32 else sales_id[:32] + "...")
        query = _ROW.where(Transaction.sales_id == sales_id, Program.advertiser_id == advertiser_id)
        row = session.execute(query).first()
        if row is None:
            raise TransactionNotFound(sales_id)
        return row

    return load


def _by_order(session: Session, advertiser_id: int, order: OrderRef) -> Loader:
    """Checked before anything is read: a bad order number, event or program id is a FieldError."""
    order_number = fields.text("order_number", order.order_number, max_length=ORDER_NUMBER_LENGTH)
    event = fields.choice("event", order.event, EVENTS, EventType.SALE.value)
    program_id = fields.optional_id("program_id", order.program_id)

    def load() -> Any:
        rows = session.execute(_order_query(advertiser_id, order_number, event, program_id)).all()
        if not rows:
            detail = f" ({event}" + (f", program {program_id})" if program_id else ")")
            raise TransactionNotFound(order_number, "order_number", detail)
        if len(rows) > 1:
            programs = ", ".join(str(row.program_id) for row in rows)
            raise FieldError(
                "program_id",
                None,
                f"is required: order {order_number!r} ({event}) is in several of your programs ({programs})",
            )
        return rows[0]

    return load


def _order_query(
    advertiser_id: int, order_number: str, event: str, program_id: int | None
) -> Select[*tuple[Any, ...]]:
    # The business key's unique index leads with the order number: this is an index look-up.
    query = _ROW.where(
        Transaction.order_number == order_number,
        Transaction.event_type == event,
        Program.advertiser_id == advertiser_id,
    )
    if program_id is not None:
        query = query.where(Transaction.program_id == program_id)
    return query.order_by(Transaction.program_id).limit(10)


def _rule(row: Any) -> CommissionRule:
    return CommissionRule(
        commission_type=row.commission_type,
        value=row.commission_value,
        currency=row.program_currency,
        allow_advertiser_commission=row.allow_advertiser_commission,
    )


def with_article(status: str) -> str:
    """The status with its article, for messages: "an approved transaction", "a pending one"."""
    return f"{'an' if status[:1] in 'aeiou' else 'a'} {status}"
