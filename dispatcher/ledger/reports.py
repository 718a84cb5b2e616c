"""A sale or lead as an advertiser reports it, whatever the channel, and its first, context-free checks."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from dispatcher.ledger import fields
from dispatcher.models import EventType, TransactionStatus
from dispatcher.models.ledger import SUB_ID_LENGTH
from dispatcher.validation import FieldError

CLICK_ID_LENGTH = 32
ORDER_NUMBER_LENGTH = 255
EVENTS = (EventType.SALE.value, EventType.LEAD.value)
# A transaction is born pending or already approved; the other statuses are reached by status changes.
INITIAL_STATUSES = (TransactionStatus.PENDING.value, TransactionStatus.APPROVED.value)
# What a repeated S2S or CSV report may say: it changes the recorded transaction (`ledger.restatements`).
STATUSES = tuple(status.value for status in TransactionStatus)
# What a click records about the visitor, given by the advertiser for a transaction without one.
SUB_ID_NAMES = ("fobs", "fobs2", "fobs3", "fobs4", "fobs5")
IP_LENGTH = 45  # the clicks' column: an IPv6 address with an IPv4 tail
USER_AGENT_LENGTH = 512
CLICK_VALUE_NAMES = (*SUB_ID_NAMES, "ip", "user_agent")
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
    *CLICK_VALUE_NAMES,
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
    # Only for transactions without a click: what the click would have carried (`#fobs#`..`#fobs5#`).
    fobs: object = None
    fobs2: object = None
    fobs3: object = None
    fobs4: object = None
    fobs5: object = None
    ip: object = None
    user_agent: object = None

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
    # A clickless report's sub ids, IP and user agent: recorded as the click it did not have, so postbacks
    # read them where they read any click's (`#fobs#`), and searches by sub id find the sale.
    click_values: dict[str, str] = field(default_factory=dict)


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
        click_values=_click_values(report),
    )


def _click_values(report: SaleReport) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in SUB_ID_NAMES:
        value = fields.optional_text(name, getattr(report, name), max_length=SUB_ID_LENGTH)
        if value is not None:
            found[name] = value
    ip = fields.optional_text("ip", report.ip, max_length=IP_LENGTH)
    if ip is not None:
        try:
            found["ip"] = str(ipaddress.ip_address(ip))
        except ValueError:
            raise FieldError("ip", ip, "must be an IP address like 203.0.113.7 or 2001:db8::1") from None
    agent = fields.optional_text("user_agent", report.user_agent, max_length=USER_AGENT_LENGTH)
    if agent is not None:
        found["user_agent"] = agent
    if found and not fields.is_blank(report.click_id):
        name = next(iter(found))
        raise FieldError(
            name,
            getattr(report, name),
            "is only for a transaction without a click_id (the click has its own)",
        )
    return found


def event_time(checked: CheckedReport, now: datetime, click_time: datetime | None) -> datetime:
    return fields.event_time("event_time", checked.raw_event_time, now, not_before=click_time)
