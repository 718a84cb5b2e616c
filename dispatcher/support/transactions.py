"""Everything about one transaction for support: click, events, every delivery and every attempt."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from dispatcher.models import (
    Advertiser,
    Click,
    Delivery,
    DeliveryState,
    Postback,
    Program,
    Publisher,
    TrafficSource,
    Transaction,
    TransactionEvent,
)


@dataclass(frozen=True)
class TransactionView:
    transaction: Transaction
    click: Click | None
    events: list[TransactionEvent]
    deliveries: list[Delivery]  # each with its attempts loaded, oldest first
    postbacks: dict[int, Postback]
    publisher: Publisher
    traffic_source: TrafficSource | None
    program: Program
    advertiser: Advertiser

    @property
    def held_back(self) -> dict[int, int]:
        """Pending deliveries waiting for their turn: delivery id -> the earlier one holding it.

        The engine sends a transaction's events to a postback in order (README, Delivery: Order): a delivery
        is not claimed while a delivery of an earlier event to the same postback is still pending, retrying
        included. Without this the console showed such a delivery as merely due, its next attempt past.
        """
        pending = [d for d in self.deliveries if d.state == DeliveryState.PENDING.value]
        oldest: dict[int, Delivery] = {}  # by postback: its pending delivery of the earliest event
        for delivery in pending:
            first = oldest.setdefault(delivery.postback_id, delivery)
            if delivery.transaction_event_id < first.transaction_event_id:
                oldest[delivery.postback_id] = delivery
        return {d.id: oldest[d.postback_id].id for d in pending if d is not oldest[d.postback_id]}


def transaction_view(session: Session, transaction_id: int) -> TransactionView | None:
    sale = session.get(Transaction, transaction_id)
    if sale is None:
        return None
    events = list(
        session.scalars(
            select(TransactionEvent)
            .where(TransactionEvent.transaction_id == sale.id)
            .order_by(TransactionEvent.id)
        )
    )
    deliveries = list(
        session.scalars(
            select(Delivery)
            .options(selectinload(Delivery.attempts))
            .where(Delivery.transaction_id == sale.id)
            .order_by(Delivery.id)
        )
    )
    postback_ids = {delivery.postback_id for delivery in deliveries}
    postbacks = {
        hook.id: hook for hook in session.scalars(select(Postback).where(Postback.id.in_(postback_ids)))
    }
    program = session.get(Program, sale.program_id)
    publisher = session.get(Publisher, sale.publisher_id)
    assert program is not None and publisher is not None  # foreign keys
    advertiser = session.get(Advertiser, program.advertiser_id)
    assert advertiser is not None
    return TransactionView(
        transaction=sale,
        click=session.get(Click, sale.click_pk) if sale.click_pk is not None else None,
        events=events,
        deliveries=deliveries,
        postbacks=postbacks,
        publisher=publisher,
        traffic_source=session.get(TrafficSource, sale.traffic_source_id) if sale.traffic_source_id else None,
        program=program,
        advertiser=advertiser,
    )


def transaction_of_delivery(session: Session, delivery_id: int) -> int | None:
    return session.scalar(select(Delivery.transaction_id).where(Delivery.id == delivery_id))


def transaction_by_sales_id(session: Session, sales_id: str) -> int | None:
    return session.scalar(select(Transaction.id).where(Transaction.sales_id == sales_id))
