"""The outbox: which postbacks an event fires, and their delivery rows, written in the event's transaction.

A postback matches an event when it is active and not deleted, belongs to the transaction's publisher, its
traffic-source scope is empty or holds the transaction's source, its program scope is empty or holds the
program, its `events` list holds the event's trigger (the transaction's type, sale or lead, for the first
report; the change, approved/declined/reversed/adjusted, after that), and its `statuses` list holds the status
the event left the transaction in. Lists are taken literally: an empty `events` list subscribes to nothing.

The delivery rows are the record; handing their ids to RQ after commit is only a shortcut (see
`dispatcher.queueing`). Backfill and replay reuse `create_deliveries` with `postback_ids` and `skip_existing`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert, literal, select, tuple_, union_all
from sqlalchemy.orm import Session

from dispatcher.models import (
    Delivery,
    DeliveryState,
    EventKind,
    Postback,
    Transaction,
    TransactionEvent,
    postback_programs,
    postback_traffic_sources,
)
from dispatcher.models.types import utcnow


@dataclass(frozen=True)
class FiredEvent:
    """What matching needs to know about a transaction event, without loading ORM rows."""

    event_id: int
    transaction_id: int
    publisher_id: int
    traffic_source_id: int | None
    program_id: int
    trigger: str  # sale | lead | approved | declined | reversed | adjusted
    status: str


@dataclass(frozen=True)
class PostbackFilter:
    id: int
    publisher_id: int
    events: frozenset[str]
    statuses: frozenset[str]
    traffic_source_ids: frozenset[int] = field(default_factory=frozenset)  # empty: every source
    program_ids: frozenset[int] = field(default_factory=frozenset)  # empty: every program

    def matches(self, event: FiredEvent) -> bool:
        return (
            self.publisher_id == event.publisher_id
            and event.trigger in self.events
            and event.status in self.statuses
            and (not self.traffic_source_ids or event.traffic_source_id in self.traffic_source_ids)
            and (not self.program_ids or event.program_id in self.program_ids)
        )


def trigger_of(kind: str, event_type: str) -> str:
    """The word postbacks subscribe to: the first report fires as its type, later events as their kind."""
    return event_type if kind == EventKind.CREATED.value else kind


def fired_event(transaction: Transaction, event: TransactionEvent) -> FiredEvent:
    return FiredEvent(
        event_id=event.id,
        transaction_id=transaction.id,
        publisher_id=transaction.publisher_id,
        traffic_source_id=transaction.traffic_source_id,
        program_id=transaction.program_id,
        trigger=trigger_of(event.kind, transaction.event_type),
        status=event.status,
    )


def create_deliveries(
    session: Session,
    events: Sequence[FiredEvent],
    *,
    postback_ids: Collection[int] | None = None,
    skip_existing: bool = False,
    now: datetime | None = None,
) -> dict[int, list[int]]:
    """Add one pending delivery per matching postback x event; returns {event id: [delivery ids]}.

    `postback_ids` limits matching to those postbacks (backfill of one postback); `skip_existing` leaves out
    pairs that already have a delivery (a re-run), which the unique constraint would otherwise refuse.
    """
    created: dict[int, list[int]] = {event.event_id: [] for event in events}
    postbacks = active_postbacks(session, {event.publisher_id for event in events}, postback_ids)
    pairs = [(hook.id, event) for event in events for hook in postbacks if hook.matches(event)]
    if skip_existing and pairs:
        existing = _existing_pairs(session, pairs)
        pairs = [(hook_id, event) for hook_id, event in pairs if (hook_id, event.event_id) not in existing]
    if not pairs:
        return created
    moment = now or utcnow()
    rows = [
        {
            "postback_id": hook_id,
            "transaction_event_id": event.event_id,
            "transaction_id": event.transaction_id,
            "publisher_id": event.publisher_id,
            "state": DeliveryState.PENDING.value,
            "attempt_count": 0,
            "next_attempt_at": moment,
            "created_at": moment,
            "updated_at": moment,
        }
        for hook_id, event in pairs
    ]
    ids = session.scalars(insert(Delivery).returning(Delivery.id, sort_by_parameter_order=True), rows).all()
    for (_hook_id, event), delivery_id in zip(pairs, ids, strict=True):
        created[event.event_id].append(delivery_id)
    return created


def active_postbacks(
    session: Session, publisher_ids: Collection[int], postback_ids: Collection[int] | None = None
) -> list[PostbackFilter]:
    """The publishers' live postbacks with their scopes: two queries, whatever the number of postbacks."""
    if not publisher_ids:
        return []
    query = select(Postback.id, Postback.publisher_id, Postback.events, Postback.statuses).where(
        Postback.publisher_id.in_(publisher_ids),
        Postback.active.is_(True),
        Postback.deleted_at.is_(None),
    )
    if postback_ids is not None:
        query = query.where(Postback.id.in_(postback_ids))
    rows = session.execute(query).all()
    if not rows:
        return []
    sources, programs = _scopes(session, [row.id for row in rows])
    return [
        PostbackFilter(
            id=row.id,
            publisher_id=row.publisher_id,
            events=frozenset(row.events or ()),
            statuses=frozenset(row.statuses or ()),
            traffic_source_ids=frozenset(sources.get(row.id, ())),
            program_ids=frozenset(programs.get(row.id, ())),
        )
        for row in rows
    ]


def _scopes(session: Session, ids: list[int]) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
    by_source = select(
        postback_traffic_sources.c.postback_id,
        literal("source").label("scope"),
        postback_traffic_sources.c.traffic_source_id.label("target"),
    ).where(postback_traffic_sources.c.postback_id.in_(ids))
    by_program = select(
        postback_programs.c.postback_id,
        literal("program").label("scope"),
        postback_programs.c.program_id.label("target"),
    ).where(postback_programs.c.postback_id.in_(ids))
    sources: dict[int, set[int]] = defaultdict(set)
    programs: dict[int, set[int]] = defaultdict(set)
    for postback_id, scope, target in session.execute(union_all(by_source, by_program)):
        (sources if scope == "source" else programs)[postback_id].add(target)
    return sources, programs


def _existing_pairs(session: Session, pairs: list[tuple[int, FiredEvent]]) -> set[tuple[int, int]]:
    keys = {(hook_id, event.event_id) for hook_id, event in pairs}
    query = select(Delivery.postback_id, Delivery.transaction_event_id).where(
        tuple_(Delivery.postback_id, Delivery.transaction_event_id).in_(keys)
    )
    return {(row.postback_id, row.transaction_event_id) for row in session.execute(query)}
