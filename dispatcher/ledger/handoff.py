"""After commit: hand new deliveries to RQ. If Redis is down, the pump sends them later."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import Flask

from dispatcher.broker import get_broker
from dispatcher.queueing import enqueue_deliveries
from dispatcher.redis_server import RedisStartError

log = logging.getLogger(__name__)


def hand_over(app: Flask, delivery_ids: Iterable[int]) -> int:
    """Enqueue deliveries the ledger has just created (and committed) in one pipeline, one round trip;
    returns the number of jobs (0 when there was nothing or Redis is down)."""
    pending = list(delivery_ids)
    if not pending:
        return 0
    try:
        client = get_broker(app).client()
    except RedisStartError as exc:  # the embedded development server would not start: same as Redis down
        log.warning("Redis unavailable; %d deliveries stay pending for the pump: %s", len(pending), exc)
        return 0
    return enqueue_deliveries(client, pending, new=True)
