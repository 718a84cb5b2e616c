"""Small builders for rows, so tests say what matters and nothing else."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from dispatcher.models import (
    Advertiser,
    Click,
    Delivery,
    Postback,
    Program,
    Publisher,
    TrafficSource,
    Transaction,
    TransactionEvent,
)

_sequence = itertools.count(1)


def publisher(session: Session, **fields: Any) -> Publisher:
    n = next(_sequence)
    row = Publisher(name=f"Publisher {n}", email=f"pub{n}@example.test", password_hash="x", **fields)
    session.add(row)
    session.flush()
    return row


def traffic_source(session: Session, owner: Publisher, **fields: Any) -> TrafficSource:
    row = TrafficSource(publisher_id=owner.id, name=fields.pop("name", f"Source {next(_sequence)}"), **fields)
    session.add(row)
    session.flush()
    return row


def program(session: Session, **fields: Any) -> Program:
    advertiser = Advertiser(name=f"Advertiser {next(_sequence)}")
    session.add(advertiser)
    session.flush()
    values: dict[str, Any] = {
        "advertiser_id": advertiser.id,
        "name": "Shop",
        "landing_url": "https://shop.example/",
        "commission_type": "percent",
        "commission_value": Decimal("10"),
        "currency": "USD",
    }
    values.update(fields)
    row = Program(**values)
    session.add(row)
    session.flush()
    return row


def click(session: Session, owner: Publisher, shop: Program, **fields: Any) -> Click:
    row = Click(click_id=f"c{next(_sequence)}", publisher_id=owner.id, program_id=shop.id, **fields)
    session.add(row)
    session.flush()
    return row


def transaction(session: Session, owner: Publisher, shop: Program, **fields: Any) -> Transaction:
    values: dict[str, Any] = {
        "sales_id": f"s{next(_sequence)}",
        "program_id": shop.id,
        "publisher_id": owner.id,
        "order_number": f"order-{next(_sequence)}",
        "sale_amount": Decimal("100.00"),
        "commission": Decimal("10.00"),
        "currency": "USD",
        "event_time": datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
    }
    values.update(fields)
    row = Transaction(**values)
    session.add(row)
    session.flush()
    return row


def event(session: Session, sale: Transaction, kind: str = "created") -> TransactionEvent:
    row = TransactionEvent(
        transaction_id=sale.id,
        kind=kind,
        status=sale.status,
        sale_amount=sale.sale_amount,
        commission=sale.commission,
        channel="api",
        occurred_at=sale.event_time,
    )
    session.add(row)
    session.flush()
    return row


def postback(session: Session, owner: Publisher, **fields: Any) -> Postback:
    row = Postback(publisher_id=owner.id, url_template="https://tracker.example/pb?cid=#fobs#", **fields)
    session.add(row)
    session.flush()
    return row


def delivery(session: Session, hook: Postback, happened: TransactionEvent, **fields: Any) -> Delivery:
    row = Delivery(
        postback_id=hook.id,
        transaction_event_id=happened.id,
        transaction_id=happened.transaction_id,
        publisher_id=hook.publisher_id,
        **fields,
    )
    session.add(row)
    session.flush()
    return row


def next_number() -> int:
    """A number no other row of this run has used: for order numbers and names."""
    return next(_sequence)
