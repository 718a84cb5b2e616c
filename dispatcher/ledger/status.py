"""Status changes and amount adjustments of recorded transactions: each is an event that may fire postbacks.

    pending  -> approved | declined
    approved -> reversed
    pending, approved: the sale amount may be adjusted (the commission follows the program's rule, or the
    advertiser's figure where the program allows it)

A request that changes the status records one event of that kind, carrying any new amount; a request that only
changes the amount records an `adjusted` event. The UPDATE is guarded by the status it was read with, so two
concurrent changes cannot both leave `pending`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from dispatcher.ledger import fields, ids
from dispatcher.ledger.commission import CommissionRule, commission, rounded
from dispatcher.ledger.errors import StatusConflict, TransactionNotFound
from dispatcher.ledger.outbox import FiredEvent, create_deliveries
from dispatcher.models import EventKind, Program, Transaction, TransactionEvent, TransactionStatus
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
    moment = now or utcnow()
    target = _target(change)
    row = _load(session, advertiser_id, sales_id)
    current = row.status
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
        return change_status(session, advertiser_id, sales_id, change, channel, now=moment)
    return Changed(sales_id, kind, new_status, amount, earned, row.currency, tuple(deliveries))


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
            raise StatusConflict(current, "status", f"a {current} transaction cannot become {target}")
        return target
    if fields.is_blank(change.sale_amount) and fields.is_blank(change.commission):
        raise StatusConflict(current, "status", f"the transaction is already {current}")
    if current not in ADJUSTABLE:
        raise StatusConflict(current, "sale_amount", f"a {current} transaction cannot be adjusted")
    return EventKind.ADJUSTED.value


def _load(session: Session, advertiser_id: int, sales_id: str) -> Any:
    if not ids.could_be_sales_id(sales_id):
        raise TransactionNotFound(sales_id if len(sales_id) <= 32 else sales_id[:32] + "...")
    query = (
        select(
            Transaction.id,
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
        )
        .join(Program, Program.id == Transaction.program_id)
        .where(Transaction.sales_id == sales_id, Program.advertiser_id == advertiser_id)
    )
    row = session.execute(query).first()
    if row is None:
        raise TransactionNotFound(sales_id)
    return row


def _rule(row: Any) -> CommissionRule:
    return CommissionRule(
        commission_type=row.commission_type,
        value=row.commission_value,
        currency=row.program_currency,
        allow_advertiser_commission=row.allow_advertiser_commission,
    )
