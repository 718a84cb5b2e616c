"""What every audience's views (portal, advertiser portal, support console) look up the same way."""

from __future__ import annotations

from typing import TypeVar

import redis
from flask import abort, current_app

from dispatcher.broker import get_broker

T = TypeVar("T")


def found(row: T | None) -> T:
    """Someone else's id and a missing id look the same: 404."""
    if row is None:
        abort(404)
    return row


def redis_client() -> redis.Redis:
    return get_broker(current_app).client()
