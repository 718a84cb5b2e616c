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
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, select, tuple_

from dispatcher.db import Db, fetch
from dispatcher.ledger.rows import inserted_ids
from dispatcher.ledger.tables import deliveries, postbacks
from dispatcher.models import (
    Delivery,
    DeliveryState,
    EventKind,
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
    db: Db,
    events: Sequence[FiredEvent],
    *,
    postback_ids: Collection[int] | None = None,
    postbacks: Sequence[PostbackFilter] | None = None,
    skip_existing: bool = False,
    now: datetime | None = None,
) -> dict[int, list[int]]:
    """Add one pending delivery per matching postback x event; returns {event id: [delivery ids]}.

    `postback_ids` limits matching to those postbacks (backfill of one postback); `postbacks`, the result of
    `active_postbacks` read beforehand, saves the query (intake reads them with the click);
    `skip_existing` leaves out pairs that already have a delivery (a re-run), which the unique constraint
    would otherwise refuse.
    """
    created: dict[int, list[int]] = {event.event_id: [] for event in events}
    if postbacks is None:
        postbacks = active_postbacks(db, {event.publisher_id for event in events}, postback_ids)
    pairs = [(hook.id, event) for event in events for hook in postbacks if hook.matches(event)]
    if skip_existing and pairs:
        existing = _existing_pairs(db, pairs)
        pairs = [(hook_id, event) for hook_id, event in pairs if (hook_id, event.event_id) not in existing]
    if not pairs:
        return created
    moment = now or utcnow()
    rows = [delivery_row(hook_id, event, moment) for hook_id, event in pairs]
    ids = inserted_ids(db, deliveries, rows, "postback_id", "transaction_event_id")
    for hook_id, event in pairs:
        created[event.event_id].append(ids[(hook_id, event.event_id)])
    return created


def delivery_row(postback_id: int, event: FiredEvent, now: datetime) -> dict[str, Any]:
    """A new pending delivery of the event to the postback, due now."""
    return {
        "postback_id": postback_id,
        "transaction_event_id": event.event_id,
        "transaction_id": event.transaction_id,
        "publisher_id": event.publisher_id,
        "state": DeliveryState.PENDING.value,
        "attempt_count": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def active_postbacks(
    db: Db,
    publisher_ids: Collection[int],
    postback_ids: Collection[int] | None = None,
) -> list[PostbackFilter]:
    """The publishers' live postbacks with their scopes, in one query whatever their number."""
    if not publisher_ids:
        return []
    params: dict[str, Any]
    if postback_ids is None and len(publisher_ids) == 1:  # one reported sale
        statement, params = _LIVE_OF_ONE, {"publisher_id": next(iter(publisher_ids))}
    else:
        statement, params = _LIVE, {"publisher_ids": list(publisher_ids)}
        if postback_ids is not None:
            statement, params["postback_ids"] = _LIVE_AMONG, list(postback_ids)
    return postback_filters(fetch(db, statement, params))


def postback_filters(rows: Iterable[Any]) -> list[PostbackFilter]:
    """The postbacks in rows of `LIVE_POSTBACK_COLUMNS` (one per postback x scope entry; rows without a
    postback, from an outer join that found none, are skipped), in the order they first appear."""
    found: dict[int, Any] = {}
    sources: dict[int, set[int]] = defaultdict(set)
    programs: dict[int, set[int]] = defaultdict(set)
    for row in rows:
        if row.postback_id is None:
            continue
        found.setdefault(row.postback_id, row)
        if row.scope_source_id is not None:
            sources[row.postback_id].add(row.scope_source_id)
        if row.scope_program_id is not None:
            programs[row.postback_id].add(row.scope_program_id)
    return [
        PostbackFilter(
            id=row.postback_id,
            publisher_id=row.postback_publisher_id,
            events=frozenset(row.events or ()),
            statuses=frozenset(row.statuses or ()),
            traffic_source_ids=frozenset(sources.get(postback_id, ())),
            program_ids=frozenset(programs.get(postback_id, ())),
        )
        for postback_id, row in found.items()
    ]


# What matching needs of a live postback, labelled so that a query may select them beside its own columns.
LIVE_POSTBACK_COLUMNS = (
    postbacks.c.id.label("postback_id"),
    postbacks.c.publisher_id.label("postback_publisher_id"),
    postbacks.c.events,
    postbacks.c.statuses,
    postback_traffic_sources.c.traffic_source_id.label("scope_source_id"),
    postback_programs.c.program_id.label("scope_program_id"),
)


def join_live_postbacks(joined: Any, publisher_id: Any) -> Any:
    """`joined` outer-joined to the live postbacks of the publisher `publisher_id` names, and their scopes:
    one row per postback x scope entry (a postback scoped to 2 sources and 3 programs gives 6 rows, few
    enough), or one row with NULL postback columns when the publisher has none."""
    return (
        joined.outerjoin(
            postbacks,
            and_(
                postbacks.c.publisher_id == publisher_id,
                postbacks.c.active.is_(True),
                postbacks.c.deleted_at.is_(None),
            ),
        )
        .outerjoin(postback_traffic_sources, postback_traffic_sources.c.postback_id == postbacks.c.id)
        .outerjoin(postback_programs, postback_programs.c.postback_id == postbacks.c.id)
    )


_LIVE_ANY = (
    select(*LIVE_POSTBACK_COLUMNS)
    .outerjoin(postback_traffic_sources, postback_traffic_sources.c.postback_id == postbacks.c.id)
    .outerjoin(postback_programs, postback_programs.c.postback_id == postbacks.c.id)
    .where(postbacks.c.active.is_(True), postbacks.c.deleted_at.is_(None))
)
_LIVE = _LIVE_ANY.where(postbacks.c.publisher_id.in_(bindparam("publisher_ids", expanding=True)))
_LIVE_OF_ONE = _LIVE_ANY.where(postbacks.c.publisher_id == bindparam("publisher_id"))
_LIVE_AMONG = _LIVE.where(postbacks.c.id.in_(bindparam("postback_ids", expanding=True)))


def _existing_pairs(db: Db, pairs: list[tuple[int, FiredEvent]]) -> set[tuple[int, int]]:
    keys = {(hook_id, event.event_id) for hook_id, event in pairs}
    query = select(Delivery.postback_id, Delivery.transaction_event_id).where(
        tuple_(Delivery.postback_id, Delivery.transaction_event_id).in_(keys)
    )
    return {(row.postback_id, row.transaction_event_id) for row in fetch(db, query, {})}
