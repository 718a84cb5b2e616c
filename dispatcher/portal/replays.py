"""Replay from the portal: re-open one of the publisher's deliveries so it is sent again.

The re-opening itself belongs to the delivery engine (`dispatcher.replay`); this adapts its answer for the
page and the API, and hands the delivery to RQ after commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from dispatcher.models import Delivery


@dataclass(frozen=True)
class ReplayOutcome:
    replayed: bool
    message: str


def replay(session: Session, delivery: Delivery) -> ReplayOutcome:
    raise NotImplementedError("waiting for dispatcher.replay (issue 5)")
