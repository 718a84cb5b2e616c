"""Pausing and resuming a postback, by its publisher (portal, API) or by staff (support console).

The engine's own pauses (a receiver answering 410, days of failures) are written by the workers in bulk
(`workers.attempts`).
"""

from __future__ import annotations

from dispatcher.models import Postback
from dispatcher.models.types import utcnow

PAUSED_BY_PUBLISHER = "Paused by the publisher"


def set_active(postback: Postback, active: bool, reason: str = PAUSED_BY_PUBLISHER) -> None:
    if active == postback.active:
        return
    postback.active = active
    if active:
        postback.paused_reason = None
        postback.paused_at = None
        # A fresh start: the engine's auto-pause counts days of failure from here, not from before the pause.
        postback.failing_since = None
    else:
        postback.paused_reason = reason
        postback.paused_at = utcnow()
