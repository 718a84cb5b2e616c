"""A sale or lead as an advertiser reports it, whatever the channel, and its first, context-free checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from dispatcher.ledger import fields
from dispatcher.models import EventType, TransactionStatus
from dispatcher.validation import FieldError

CLICK_ID_LENGTH = 32
ORDER_NUMBER_LENGTH = 255
EVENTS = (EventType.SALE.value, EventType.LEAD.value)
# A transaction is born pending or already approved; the other statuses are reached by status changes.
INITIAL_STATUSES = (TransactionStatus.PENDING.value, TransactionStatus.APPROVED.value)
# What a repeated S2S or CSV report may say: it changes the recorded transaction (`ledger.restatements`).
STATUSES = tuple(status.value for status in TransactionStatus)
# The names of the JSON body and CSV columns.
FIELD_NAMES = (
    "click_id",
    "order_number",
    "sale_amount",
    "currency",
    "event",
    "status",
    "event_time",
    "commission",
    "publisher_id",
    "traffic_source_id",
    "program_id",
)


@dataclass(frozen=True)
class SaleReport:
    """Raw values, as received: text from query strings and CSV, text or numbers from JSON."""

    click_id: object = None
    order_number: object = None
    sale_amount: object = None
    currency: object = None
    event: object = None
    status: object = None
    event_time: object = None
    commission: object = None
    # Only for transactions without a click: who gets the credit, and for which program.
    publisher_id: object = None
    traffic_source_id: object = None
    program_id: object = None

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> SaleReport:
        unknown = sorted(set(values) - set(FIELD_NAMES))
        if unknown:
            raise FieldError(
                unknown[0], values[unknown[0]], f"is not a field; known: {', '.join(FIELD_NAMES)}"
            )
        return cls(**values)


@dataclass(frozen=True)
class CheckedReport:
    """A report whose values are well-formed; whether they fit the click and program is checked later."""

    click_id: str | None
    order_number: str
    sale_amount: Decimal  # not yet checked against the currency's minor units
    raw_sale_amount: object
    currency: str | None  # None: the program's
    event_type: str
    status: str
    raw_event_time: object
    raw_commission: object
    publisher_id: int | None
    traffic_source_id: int | None
    program_id: int | None


def check(report: SaleReport, statuses: tuple[str, ...] = INITIAL_STATUSES) -> CheckedReport:
    return CheckedReport(
        click_id=fields.optional_text("click_id", report.click_id, max_length=CLICK_ID_LENGTH),
        order_number=fields.text("order_number", report.order_number, max_length=ORDER_NUMBER_LENGTH),
        sale_amount=fields.amount("sale_amount", report.sale_amount),
        raw_sale_amount=report.sale_amount,
        currency=fields.currency("currency", report.currency),
        event_type=fields.choice("event", report.event, EVENTS, EventType.SALE.value),
        status=fields.choice("status", report.status, statuses, TransactionStatus.PENDING.value),
        raw_event_time=report.event_time,
        raw_commission=report.commission,
        publisher_id=fields.optional_id("publisher_id", report.publisher_id),
        traffic_source_id=fields.optional_id("traffic_source_id", report.traffic_source_id),
        program_id=fields.optional_id("program_id", report.program_id),
    )


def event_time(checked: CheckedReport, now: datetime, click_time: datetime | None) -> datetime:
    return fields.event_time("event_time", checked.raw_event_time, now, not_before=click_time)
