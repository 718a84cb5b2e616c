"""Claiming deliveries: the database is the queue of record, and a lease says who is sending what.

A claim is one UPDATE that only touches deliveries that are pending, due and not leased (or whose lease
has expired), so two workers can never hold the same delivery. PostgreSQL picks the rows with FOR UPDATE
SKIP LOCKED (concurrent claimers skip each other's rows instead of waiting); on SQLite the single UPDATE is
atomic because SQLite has one writer at a time.

Order: a delivery is claimed only *in its turn*: no delivery of an earlier event of the same transaction
to the same postback is still pending (due, waiting for its retry, or in flight). A status-driven tracker
that got "reversed" before "sale" would count a reversed sale as a sale. When a delivery settles,
`next_in_turn` hands on the one it held back.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    CTE,
    BindParameter,
    ColumnElement,
    FromClause,
    Integer,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from dispatcher.driver_sql import rows_inside
from dispatcher.models import AttemptOutcome, Delivery, DeliveryState, ErrorClass
from dispatcher.models.deliveries import Attempt

deliveries = cast(Table, Delivery.__table__)
attempts = cast(Table, Attempt.__table__)


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    number: int  # the attempt number this claim will make (attempt_count after the claim)


def claimable(now: datetime | BindParameter[datetime], rows: FromClause = deliveries) -> ColumnElement[bool]:
    """Pending, due and not leased; `rows`: the deliveries table, or rows of it already read (a CTE)."""
    return and_(
        rows.c.state == DeliveryState.PENDING.value, rows.c.next_attempt_at <= now, _unleased(now, rows)
    )


def _unleased(now: datetime | BindParameter[datetime], rows: FromClause = deliveries) -> ColumnElement[bool]:
    return or_(rows.c.lease_expires_at.is_(None), rows.c.lease_expires_at < now)


# Written into the SQL, not bound: a prepared statement's generic plan can use ix_deliveries_pending_turn
# (whose predicate is state = 'pending') only if the query says so literally.
_PENDING: ColumnElement[str] = literal_column(f"'{DeliveryState.PENDING.value}'")


def _in_turn(rows: FromClause = deliveries) -> ColumnElement[bool]:
    earlier = deliveries.alias("earlier")
    # A scalar subquery with LIMIT 1, not NOT EXISTS: PostgreSQL turns NOT EXISTS into an anti join and, for
    # a claim of 50, hashed every pending delivery of the table (seen: 15x the database's CPU per delivery).
    # This is one probe of ix_deliveries_pending_turn per delivery asked about.
    first_earlier = (
        select(earlier.c.id)
        .where(
            earlier.c.transaction_id == rows.c.transaction_id,
            earlier.c.postback_id == rows.c.postback_id,
            earlier.c.transaction_event_id < rows.c.transaction_event_id,
            earlier.c.state == _PENDING,
        )
        .limit(1)
        .scalar_subquery()
    )
    return first_earlier.is_(None)


# Built once: an alias of the table costs a copy of its every column, and this runs in every claim.
_IN_TURN = _in_turn()


def in_turn() -> ColumnElement[bool]:
    """No earlier event of the same transaction is still pending for the same postback (see the module doc).

    Events are numbered in the order they were recorded, so their ids are the order; deliveries made later
    by a backfill or re-opened by a replay keep it too. Unrelated transactions are never held.
    """
    return _IN_TURN


def _following() -> Select[int | None]:
    """For each settled delivery, the next pending one of its transaction and postback (one index probe each;
    those after it are held by it in turn), or NULL."""
    done = deliveries.alias("done")
    later = deliveries.alias("later")
    following = (
        select(later.c.id)
        .where(
            later.c.transaction_id == done.c.transaction_id,
            later.c.postback_id == done.c.postback_id,
            later.c.transaction_event_id > done.c.transaction_event_id,
            later.c.state == _PENDING,
        )
        .order_by(later.c.transaction_event_id)
        .limit(1)
        .scalar_subquery()
    )
    return select(following.label("following")).where(done.c.id.in_(bindparam("settled", expanding=True)))


def _hand_on() -> Update:
    now = bindparam("now", type_=deliveries.c.next_attempt_at.type)
    return (
        update(deliveries)
        .where(deliveries.c.id.in_(bindparam("ids", expanding=True)), claimable(now), _IN_TURN)
        .values(queued_at=now, updated_at=now)  # set here: the driver runs no onupdate default
        .returning(deliveries.c.id, deliveries.c.attempt_count)
    )


# Built once, for the same reason; they run in every flush of outcomes. Two statements, not one UPDATE with
# the look-up as its subquery: PostgreSQL drove that one from every pending due delivery (7 ms per flush).
_FOLLOWING = _following()
_HAND_ON = _hand_on()


def next_in_turn(session: Session, settled: Sequence[int], now: datetime) -> list[tuple[int, int]]:
    """Deliveries that `settled` (succeeded or failed for good) held back and that may go now: marked
    queued and returned as (id, attempt_count) for the caller to hand to RQ once this transaction commits.

    Driven from the settled rows (their transaction's deliveries, by index), not by scanning the pending.
    If the hand-over is lost, the pump finds them: they are due and in their turn.
    """
    if not settled:
        return []
    rows = rows_inside(session.connection(), _FOLLOWING, {"settled": list(settled)})
    following = [row.following for row in rows if row.following is not None]
    if not following:
        return []
    handed_on = rows_inside(session.connection(), _HAND_ON, {"ids": following, "now": now})
    return [(row.id, row.attempt_count) for row in handed_on]


def locked_once(ids: Select[int], *, name: str, postgres: bool) -> Select[int]:
    """`ids`, picked once for the statement that uses them, skipping rows other transactions hold.

    An `IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` may be planned as a semi join that runs the subquery
    again for every candidate row; each run skips the rows this very statement has just changed and so
    picks the next n, and the UPDATE ends up touching every due row (seen: a pump pass of 7 handing out 30).
    A MATERIALIZED CTE is evaluated exactly once, so the LIMIT holds.
    """
    if not postgres:
        return ids  # one writer at a time: the subquery cannot see another statement's changes
    return select(_locked_rows(ids, name).c.id)


def _locked_rows(rows: Select[Any], name: str) -> CTE:
    """PostgreSQL: `rows` locked (skipping rows other transactions hold) and read once (see `locked_once`)."""
    return rows.with_for_update(skip_locked=True).cte(name).prefix_with("MATERIALIZED")


def claim(
    session: Session,
    ids: Sequence[int],
    *,
    token: str,
    lease_s: float,
    now: datetime,
    top_up: int = 0,
    skip_postbacks: Collection[int] = (),
) -> list[Claim]:
    """Lease those of `ids` that are due and free; returns them with the attempt number each will make.

    `top_up` also leases up to that many other due first attempts: the web app queues one small job per sale,
    and a job that fills its batch sends far more per unit of overhead (the other jobs then find nothing).
    Deliveries of `skip_postbacks` (whose receiver this process just found busy or hanging) are left as they
    are: claiming them only to give them back would cost every other receiver the work.
    """
    if not ids and top_up <= 0:
        return []
    postgres = session.get_bind().dialect.name == "postgresql"
    statement = _claim_statement(postgres=postgres, top_up=top_up > 0, resting=bool(skip_postbacks))
    params: dict[str, Any] = {
        "ids": list(ids),
        "now": now,
        "lease_until": now + timedelta(seconds=lease_s),
        "token": token,
    }
    if top_up > 0:
        params["top_up"] = top_up
    if skip_postbacks:
        params["resting"] = sorted(skip_postbacks)
    claims = [
        Claim(row.id, row.attempt_count) for row in rows_inside(session.connection(), statement, params)
    ]
    _close_interrupted(session, [c.delivery_id for c in claims if c.number > 1])
    return claims


# One claim statement per shape, built the first time it is used and then only executed with new values:
# profiled in-process (yappi, CPU clock), claim and load took 80% of a one-delivery job's `send_batch`,
# much of it building statements and their cache keys; most jobs carry a sale or two (bench.latency).
_claim_statements: dict[tuple[bool, bool, bool], Update] = {}
# What a PostgreSQL claim reads of the rows asked for, to judge them once locked (`_asked`).
_JUDGED_COLUMNS = ("id", "state", "next_attempt_at", "lease_expires_at")
_TURN_COLUMNS = ("transaction_id", "postback_id", "transaction_event_id")


def _claim_statement(*, postgres: bool, top_up: bool, resting: bool) -> Update:
    shape = (postgres, top_up, resting)
    statement = _claim_statements.get(shape)
    if statement is None:
        # setdefault: two threads building the same shape at once keep one.
        statement = _claim_statements.setdefault(shape, _build_claim(*shape))
    return statement


def _build_claim(postgres: bool, top_up: bool, resting: bool) -> Update:
    ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
    now = bindparam("now", type_=deliveries.c.next_attempt_at.type)
    not_resting = deliveries.c.postback_id.not_in(bindparam("resting", expanding=True)) if resting else None
    others = None
    if top_up:
        others = (
            select(deliveries.c.id)
            .where(claimable(now), deliveries.c.attempt_count == 0, deliveries.c.id.not_in(ids), in_turn())
            .order_by(deliveries.c.next_attempt_at)
            .limit(bindparam("top_up", type_=Integer))
        )
        if not_resting is not None:
            others = others.where(not_resting)
    if postgres:
        taken = _asked(ids, now, not_resting)
        if others is not None:
            # Locked below its LIMIT: a row another claim holds is skipped for the next due one.
            topped_up = locked_once(others, name="topped_up", postgres=True)
            taken = union_all(taken, topped_up)  # type: ignore[assignment]
        return _claiming(deliveries.c.id.in_(taken), now)
    # SQLite has one writer at a time: nothing changes between reading a row and updating it.
    chosen: ColumnElement[bool] = and_(deliveries.c.id.in_(ids), claimable(now), in_turn())
    if not_resting is not None:
        chosen = and_(chosen, not_resting)
    if others is not None:
        chosen = and_(claimable(now), or_(chosen, deliveries.c.id.in_(others)))
    return _claiming(chosen, now)


def _claiming(chosen: ColumnElement[bool], now: BindParameter[datetime]) -> Update:
    return (
        update(deliveries)
        .where(chosen)
        .values(
            attempt_count=deliveries.c.attempt_count + 1,
            lease_expires_at=bindparam("lease_until", type_=deliveries.c.lease_expires_at.type),
            leased_by=bindparam("token", type_=deliveries.c.leased_by.type),
            # Claimed is no longer queued: if this worker dies, the pump re-hands it once the lease expires.
            queued_at=None,
            updated_at=now,  # set here: the statement runs on the driver, which runs no onupdate default
        )
        .returning(deliveries.c.id, deliveries.c.attempt_count)
    )


def _asked(
    ids: BindParameter[list[int]], now: BindParameter[datetime], not_resting: ColumnElement[bool] | None
) -> Select[Any]:
    """PostgreSQL: those of `ids` that are claimable, read by primary key and locked (skipping rows other
    transactions hold) before they are judged.

    Judged in the query that read them, they were read through ix_deliveries_state_next_attempt_at whenever
    the planner guessed few pending rows, as it does on a table never analyzed or analyzed while little was
    pending: each claim then read every pending due delivery. With 50,000 pending (never analyzed), a claim of
    50 took the database 9.5 ms instead of 0.9-1.8. Asked for by id, and by lease (no index has it), the rows
    come by primary key (or, from a table of a few thousand rows planned with the server's default page
    costs, by reading it: see `workers.planner_costs`). Locked first, a row cannot
    change before it is judged (locking reads its newest version); one not leased but not claimable either
    (not pending, not due, out of turn) stays locked until the caller's transaction ends, untouched.
    What updates it meanwhile waits for that (a job's claim, load and log: tens of ms): the flusher handing on
    an out-of-turn delivery whose turn has just come; rarely two such waits cross and PostgreSQL ends one
    transaction (the flusher tries again; a claim's job fails and the pump hands its deliveries out again).
    """
    columns = [deliveries.c[column] for column in (*_JUDGED_COLUMNS, *_TURN_COLUMNS)]
    wanted = select(*columns).where(deliveries.c.id.in_(ids), _unleased(now))
    if not_resting is not None:
        # Not locked either: a job carries the deliveries of a hanging receiver for as long as it hangs.
        # A NOT IN is no index condition, so the rows still come by primary key.
        wanted = wanted.where(not_resting)
    locked = _locked_rows(wanted, "asked")
    return select(locked.c.id).where(claimable(now, locked), _in_turn(locked))


def release(session: Session, ids: Sequence[int], *, token: str, retry_at: datetime) -> None:
    """Give claims back unsent (no host slot free): the attempt they counted is not made."""
    if not ids:
        return
    session.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(ids), deliveries.c.leased_by == token)
        .values(
            attempt_count=deliveries.c.attempt_count - 1,
            lease_expires_at=None,
            leased_by=None,
            next_attempt_at=retry_at,
            queued_at=None,
        )
    )


def postpone(session: Session, ids: Sequence[int], *, retry_at: datetime, now: datetime) -> None:
    """Leave unclaimed deliveries of a job to the pump (this process has no capacity for them now)."""
    if not ids:
        return
    session.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(ids), claimable(now))
        .values(next_attempt_at=retry_at, queued_at=None)
    )


def _close_interrupted(session: Session, ids: Sequence[int]) -> None:
    """An attempt still "sending" on a delivery we could claim belongs to a worker that died mid-send."""
    if not ids:
        return
    session.execute(
        update(attempts)
        .where(attempts.c.delivery_id.in_(ids), attempts.c.outcome == AttemptOutcome.SENDING.value)
        .values(
            outcome=AttemptOutcome.RETRY.value,
            error_class=ErrorClass.INTERRUPTED.value,
            error_message="the worker stopped before recording the outcome; the receiver may have got it",
        )
    )
