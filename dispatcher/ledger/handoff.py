"""After commit: hand new deliveries to RQ. If Redis is down, the pump sends them later."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask

from dispatcher.broker import get_broker
from dispatcher.queueing import enqueue_deliveries


def hand_over(app: Flask, delivery_ids: Iterable[int]) -> int:
    """Enqueue in one pipeline; returns the number of jobs (0 when there was nothing or Redis is down)."""
    pending = list(delivery_ids)
    if not pending:
        return 0
    return enqueue_deliveries(get_broker(app).client(), pending)
