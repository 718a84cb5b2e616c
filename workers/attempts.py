"""The attempt log and the outcome of each delivery, written in bulk.

Order of writes, so that nothing is sent without a trace: the attempt row ("sending") commits with the claim,
before the request leaves; its outcome, the delivery's next state and the postback's health commit after.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from dispatcher.egress.client import Exchange, OutboundRequest
from dispatcher.egress.errors import DeliveryError
from dispatcher.egress.render import Claimed
from dispatcher.models import AttemptOutcome, DeliveryState, ErrorClass, Postback
from workers import unnested
from workers.claims import attempts, deliveries, next_in_turn, release
from workers.hosts import destination
from workers.retry_policy import Decision
from workers.unnested import BIGINT, INT, JSON_TEXT, TEXT, TIME

postbacks = cast(Table, Postback.__table__)
MESSAGE_LIMIT = 2000


@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    token: str
    request: OutboundRequest
    exchange: Exchange
    error: DeliveryError | None
    decision: Decision
    finished_at: datetime


@dataclass(frozen=True)
class GiveBack:
    """A claimed send that never started (its host had no slot in time): undo its attempt and its claim."""

    claimed: Claimed
    token: str
    retry_after_s: float
    held_capacity: bool = False  # it had started (and was then refused a cluster slot), not only waited


def write_sending(
    session: Session, sends: Sequence[tuple[Claimed, OutboundRequest]], *, worker: str, now: datetime
) -> None:
    if not sends:
        return
    values = [
        {
            "delivery_id": claimed.delivery_id,
            "number": claimed.number,
            "outcome": AttemptOutcome.SENDING.value,
            "started_at": now,
            "method": request.method,
            "url": request.url,
            "request_headers": dict(request.headers),
            "request_body": request.body.decode("utf-8", "replace") if request.body is not None else None,
            "worker": worker,
        }
        for claimed, request in sends
    ]
    unnested.write(session, values, together=_LOG_SENDING, columns=_SENDING_COLUMNS, each=insert(attempts))


# Each column the log writes: the name of its value above and, on PostgreSQL, its type in an array.
_SENDING: unnested.Spec = {
    "delivery_id": ("delivery_id", BIGINT),
    "number": ("number", INT),
    "outcome": ("outcome", TEXT),
    "started_at": ("started_at", TIME),
    "method": ("method", TEXT),
    "url": ("url", TEXT),
    "request_headers": ("request_headers", JSON_TEXT),
    "request_body": ("request_body", TEXT),
    "worker": ("worker", TEXT),
}
_SENDING_COLUMNS = list(_SENDING.values())
_sending = unnested.rows(_SENDING_COLUMNS)
_LOG_SENDING = insert(attempts).from_select(
    list(_SENDING), select(*unnested.assigned(_sending, attempts, _SENDING).values())
)


def give_back(session: Session, items: Sequence[GiveBack], *, now: datetime) -> None:
    if not items:
        return
    session.execute(
        delete(attempts).where(
            attempts.c.delivery_id == bindparam("b_delivery_id"),
            attempts.c.number == bindparam("b_number"),
            attempts.c.outcome == AttemptOutcome.SENDING.value,
        ),
        [{"b_delivery_id": item.claimed.delivery_id, "b_number": item.claimed.number} for item in items],
    )
    for token, wait_s in sorted({(item.token, item.retry_after_s) for item in items}):
        ids = [
            item.claimed.delivery_id for item in items if (item.token, item.retry_after_s) == (token, wait_s)
        ]
        release(session, ids, token=token, retry_at=now + timedelta(seconds=wait_s))


def fail_unsendable(session: Session, claims: Sequence[Claimed], *, token: str, now: datetime) -> None:
    """Deliveries of a paused, deactivated or deleted postback end here, without an attempt."""
    for claimed in claims:
        session.execute(
            update(deliveries)
            .where(deliveries.c.id == claimed.delivery_id, deliveries.c.leased_by == token)
            .values(
                state=DeliveryState.FAILED.value,
                attempt_count=deliveries.c.attempt_count - 1,
                lease_expires_at=None,
                leased_by=None,
                next_attempt_at=None,
                last_error_class=ErrorClass.PAUSED.value,
                last_error=f"not sent: the postback is paused ({claimed.paused_reason})",
                completed_at=now,
            )
        )


def write_outcomes(
    session: Session, outcomes: Sequence[Outcome], *, auto_pause_after_s: float, now: datetime
) -> list[tuple[int, int]]:
    """Returns the deliveries that the settled ones held back and that may go now (`claims.next_in_turn`)."""
    if not outcomes:
        return []
    attempt_values = [_attempt_values(o) for o in outcomes]
    delivery_values = [_delivery_values(o) for o in outcomes]
    unnested.write(
        session,
        attempt_values,
        together=_COMPLETE_ATTEMPTS,
        columns=_OUTCOME_COLUMNS,
        each=_complete_attempt,
        key="b_{}",
    )
    unnested.write(
        session,
        delivery_values,
        together=_SETTLE_DELIVERIES,
        columns=_SETTLED_COLUMNS,
        each=_settle_delivery,
        key="b_{}",
    )
    _track_postback_health(session, outcomes, auto_pause_after_s)
    settled = [o.claimed.delivery_id for o in outcomes if o.decision.outcome is not AttemptOutcome.RETRY]
    return next_in_turn(session, settled, now)


# What the flush sets: each column, the name of its value (`b_<name>` in `_attempt_values` and
# `_delivery_values`) and, on PostgreSQL, its type in an array (workers.unnested).
_OUTCOME: unnested.Spec = {
    "outcome": ("outcome", TEXT),
    "duration_ms": ("duration_ms", INT),
    "resolved_ip": ("resolved_ip", TEXT),
    "status_code": ("status_code", INT),
    "response_headers": ("response_headers", JSON_TEXT),
    "response_excerpt": ("response_excerpt", TEXT),
    "error_class": ("error_class", TEXT),
    "error_message": ("error_message", TEXT),
}
_SETTLED: unnested.Spec = {
    "state": ("state", TEXT),
    "next_attempt_at": ("next_attempt_at", TIME),
    "destination_host": ("host", TEXT),
    "last_status_code": ("status_code", INT),
    "last_error_class": ("error_class", TEXT),
    "last_error": ("error", TEXT),
    "completed_at": ("completed_at", TIME),
}
_RELEASED = {"lease_expires_at": None, "leased_by": None, "queued_at": None}


def _bound(spec: unnested.Spec) -> dict[str, object]:
    return {column: bindparam(f"b_{name}") for column, (name, _) in spec.items()}


_complete_attempt = (
    update(attempts)
    .where(attempts.c.delivery_id == bindparam("b_delivery_id"), attempts.c.number == bindparam("b_number"))
    .values(_bound(_OUTCOME))
)
# Only the holder of the lease settles the delivery: a worker whose lease expired (and was re-claimed by
# another) still completes its attempt row but leaves the delivery to the new holder.
_settle_delivery = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"), deliveries.c.leased_by == bindparam("b_token"))
    .values(_RELEASED | _bound(_SETTLED))
)

# The same two writes as one statement each on PostgreSQL.
_OUTCOME_COLUMNS = [("delivery_id", BIGINT), ("number", INT), *_OUTCOME.values()]
_outcome = unnested.rows(_OUTCOME_COLUMNS)
_COMPLETE_ATTEMPTS = (
    update(attempts)
    .where(attempts.c.delivery_id == _outcome.c.delivery_id, attempts.c.number == _outcome.c.number)
    .values(unnested.assigned(_outcome, attempts, _OUTCOME))
)
_SETTLED_COLUMNS = [("id", BIGINT), ("token", TEXT), *_SETTLED.values()]
_settled = unnested.rows(_SETTLED_COLUMNS)
_SETTLE_DELIVERIES = (
    update(deliveries)
    .where(deliveries.c.id == _settled.c.id, deliveries.c.leased_by == _settled.c.token)
    .values(_RELEASED | unnested.assigned(_settled, deliveries, _SETTLED))
)


def _attempt_values(outcome: Outcome) -> dict[str, object]:
    exchange, error = outcome.exchange, outcome.error
    return {
        "b_delivery_id": outcome.claimed.delivery_id,
        "b_number": outcome.claimed.number,
        "b_outcome": outcome.decision.outcome.value,
        "b_duration_ms": exchange.duration_ms,
        "b_resolved_ip": exchange.resolved_ip,
        "b_status_code": exchange.status_code,
        "b_response_headers": exchange.headers,
        "b_response_excerpt": exchange.excerpt,
        "b_error_class": error.error_class.value if error else None,
        "b_error_message": error.message[:MESSAGE_LIMIT] if error else None,
    }


def _delivery_values(outcome: Outcome) -> dict[str, object]:
    decision, error, request = outcome.decision, outcome.error, outcome.request
    retry = decision.outcome is AttemptOutcome.RETRY
    state = {
        AttemptOutcome.SUCCEEDED: DeliveryState.SUCCEEDED,
        AttemptOutcome.RETRY: DeliveryState.PENDING,
        AttemptOutcome.FAILED: DeliveryState.FAILED,
    }[decision.outcome]
    return {
        "b_id": outcome.claimed.delivery_id,
        "b_token": outcome.token,
        "b_state": state.value,
        "b_next_attempt_at": outcome.finished_at + timedelta(seconds=decision.delay_s or 0)
        if retry
        else None,
        "b_host": destination(request.url)[:255],
        "b_status_code": outcome.exchange.status_code,
        "b_error_class": error.error_class.value if error else None,
        "b_error": error.message[:MESSAGE_LIMIT] if error else None,
        "b_completed_at": None if retry else outcome.finished_at,
    }


def _track_postback_health(session: Session, outcomes: Sequence[Outcome], auto_pause_after_s: float) -> None:
    """Any success clears the failing streak; 5 days of failures, or a 410, pause the postback."""
    now = max(o.finished_at for o in outcomes)
    failed = sorted({o.claimed.postback_id for o in outcomes if o.error is not None})
    succeeded = sorted({o.claimed.postback_id for o in outcomes if o.error is None})
    gone = {o.claimed.postback_id: o.error.pause_reason for o in outcomes if o.error and o.error.pause_reason}
    if failed:
        session.execute(_START_FAILING, {"ids": failed, "now": now})
    if succeeded:
        session.execute(_STOP_FAILING, {"ids": succeeded})
    still_failing = [pid for pid in failed if pid not in succeeded]
    if still_failing:
        since = now - timedelta(seconds=auto_pause_after_s)
        _pause(
            session,
            [postbacks.c.id.in_(still_failing), postbacks.c.failing_since <= since],
            f"paused automatically: every attempt failed for {auto_pause_after_s / 86400:g} days",
            now,
        )
    for postback_id, reason in sorted(gone.items()):
        _pause(session, [postbacks.c.id == postback_id], reason or "gone", now)


# Built once: the clear runs in nearly every flush, and building it (its cache key included) cost as much CPU
# as running it (100 us each, PostgreSQL, in-process).
_START_FAILING = (
    update(postbacks)
    .where(postbacks.c.id.in_(bindparam("ids", expanding=True)), postbacks.c.failing_since.is_(None))
    .values(failing_since=bindparam("now", type_=postbacks.c.failing_since.type))
)
_STOP_FAILING = (
    update(postbacks)
    .where(postbacks.c.id.in_(bindparam("ids", expanding=True)), postbacks.c.failing_since.is_not(None))
    .values(failing_since=None)
)


def _pause(session: Session, conditions: Iterable[ColumnElement[bool]], reason: str, now: datetime) -> None:
    session.execute(
        update(postbacks)
        .where(and_(*conditions), or_(postbacks.c.paused_at.is_(None), postbacks.c.active.is_(True)))
        .values(active=False, paused_reason=reason, paused_at=now)
    )
