"""What staff change: replay one delivery, pause or resume a postback. Each writes its audit entry in the
same database transaction as the change, then commits; the delivery is handed to the retry lane after commit
(if Redis is down it stays re-opened and the pump sends it)."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from sqlalchemy.orm import Session

from dispatcher.models import Postback, Publisher
from dispatcher.postback_pausing import set_active
from dispatcher.queueing import enqueue_deliveries
from dispatcher.replay import ReplayError, reopen_delivery
from dispatcher.support import audit
from dispatcher.validation import FieldError

REASON_MAX = 500


@dataclass(frozen=True)
class Outcome:
    done: bool
    message: str


def replay_delivery(session: Session, client: redis.Redis, staff_id: int, delivery_id: int) -> Outcome:
    try:
        delivery = reopen_delivery(session, delivery_id)
    except ReplayError as exc:
        session.rollback()
        return Outcome(False, f"Not replayed: {exc}.")
    audit.record(
        session,
        staff_id,
        "replay",
        "delivery",
        delivery_id,
        attempts_before=delivery.attempt_count,
        publisher_id=delivery.publisher_id,
    )
    session.commit()
    enqueue_deliveries(client, [delivery_id], retry=True)
    return Outcome(True, f"Delivery {delivery_id} will be sent again in a moment.")


def _clean_reason(reason: str) -> str:
    clean = " ".join(reason.split())
    if any(ord(char) < 32 for char in clean):
        raise FieldError("reason", clean, "must not contain control characters")
    if len(clean) > REASON_MAX:
        raise FieldError("reason", clean[:40] + "...", f"must be at most {REASON_MAX} characters")
    return clean


def pause_postback(session: Session, staff_id: int, postback: Postback, reason: str) -> Outcome:
    clean = _clean_reason(reason)
    if not clean:
        raise FieldError("reason", reason, "is required: say why, the publisher sees it")
    if not postback.active:
        return Outcome(False, f"Postback {postback.id} is already paused.")
    set_active(postback, False, f"Paused by support: {clean}")
    audit.record(session, staff_id, "pause", "postback", postback.id, reason=clean)
    session.commit()
    return Outcome(True, f"Postback {postback.id} paused.")


def resume_postback(session: Session, staff_id: int, postback: Postback, reason: str = "") -> Outcome:
    if postback.deleted_at is not None:
        return Outcome(False, f"Postback {postback.id} was deleted by its publisher; it cannot be resumed.")
    if postback.active:
        return Outcome(False, f"Postback {postback.id} is already active.")
    owner = session.get(Publisher, postback.publisher_id)
    if owner is not None and not owner.active:
        # Its reactivation resumes the postbacks its deactivation paused (dispatcher.account_admin).
        return Outcome(
            False, f"Postback {postback.id}: its publisher is deactivated; reactivate the publisher."
        )
    note = _clean_reason(reason)
    previous = postback.paused_reason
    set_active(postback, True)
    audit.record(
        session,
        staff_id,
        "resume",
        "postback",
        postback.id,
        reason=note,
        paused_reason=previous,
    )
    session.commit()
    return Outcome(True, f"Postback {postback.id} resumed.")
