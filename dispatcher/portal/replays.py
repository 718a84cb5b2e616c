"""Replay from the portal: re-open one of the publisher's deliveries so it is sent again.

The re-opening belongs to the delivery engine (`dispatcher.replay.reopen_delivery`: attempts are kept, the
retry schedule starts afresh); this commits it and hands the delivery to the retry lane at once. If Redis is
down the delivery is still re-opened and the pump sends it.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from sqlalchemy.orm import Session

from dispatcher.models import Delivery
from dispatcher.queueing import enqueue_deliveries
from dispatcher.replay import ReplayError, reopen_delivery


@dataclass(frozen=True)
class ReplayOutcome:
    replayed: bool
    message: str


def replay(session: Session, client: redis.Redis, delivery: Delivery) -> ReplayOutcome:
    """`delivery` must already be known to be the caller's own (the portal checked its owner)."""
    delivery_id = delivery.id
    try:
        reopen_delivery(session, delivery_id)
    except ReplayError as exc:
        session.rollback()
        return ReplayOutcome(False, f"Not replayed: {exc}.")
    session.commit()
    enqueue_deliveries(client, [delivery_id], retry=True)
    return ReplayOutcome(True, f"Delivery {delivery_id} will be sent again in a moment.")
