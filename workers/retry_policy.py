"""When the next try is due, once `dispatcher.egress.verdict` has said what an answer means."""

from __future__ import annotations

import random
from dataclasses import dataclass

from dispatcher.egress.errors import DeliveryError
from dispatcher.models import AttemptOutcome
from workers.settings import EngineSettings


@dataclass(frozen=True)
class Decision:
    outcome: AttemptOutcome
    delay_s: float | None = None  # for a retry: seconds from now


def decide(
    error: DeliveryError | None,
    attempt_in_schedule: int,
    settings: EngineSettings,
    rng: random.Random | None = None,
) -> Decision:
    """`attempt_in_schedule` counts from 1 (since the last replay); the schedule's length is the budget."""
    if error is None:
        return Decision(AttemptOutcome.SUCCEEDED)
    if error.permanent or attempt_in_schedule >= settings.max_attempts:
        return Decision(AttemptOutcome.FAILED)
    return Decision(AttemptOutcome.RETRY, retry_delay_s(error, attempt_in_schedule, settings, rng))


def retry_delay_s(
    error: DeliveryError, attempt_in_schedule: int, settings: EngineSettings, rng: random.Random | None = None
) -> float:
    scheduled = settings.retry_schedule_s[attempt_in_schedule]
    jitter = settings.retry_jitter
    delay = scheduled * (1 + (rng or random).uniform(-jitter, jitter)) if jitter else scheduled
    if error.throttled:
        delay = max(delay, settings.throttle_min_s)
    if error.retry_after_s is not None:
        # The receiver's hint is honoured within [scheduled, 2x scheduled]: never hammer, never stall.
        delay = min(max(error.retry_after_s, delay), max(2 * scheduled, delay))
    return delay
