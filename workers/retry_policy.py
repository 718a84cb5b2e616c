"""What an answer means (success, try again, give up) and when the next try is due."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from dispatcher.models import AttemptOutcome, ErrorClass
from workers.egress import Exchange
from workers.errors import DeliveryError
from workers.settings import EngineSettings

# Statuses that say "not now" rather than "never".
RETRYABLE_4XX = frozenset({408, 429})


def judge(exchange: Exchange, success_body_contains: str | None = None) -> DeliveryError | None:
    """None on success, else the error (with its permanent flag) the exchange amounts to."""
    if exchange.error is not None:
        return exchange.error
    status = exchange.status_code or 0
    said = f"{status} {exchange.reason}".strip()
    if 200 <= status < 300:
        if success_body_contains and success_body_contains not in (exchange.excerpt or ""):
            return DeliveryError(
                ErrorClass.BODY_MISMATCH,
                f"answered {said} but the body lacks {success_body_contains!r}",
                permanent=True,
            )
        return None
    if 300 <= status < 400:
        location = _header(exchange, "location") or "(no Location)"
        return DeliveryError(
            ErrorClass.REDIRECT, f"{said}: redirects are not followed; Location: {location}", permanent=True
        )
    if status == 410:
        reason = f"the receiver answered {said}: the endpoint is gone"
        return DeliveryError(ErrorClass.HTTP_STATUS, said, permanent=True, pause_reason=reason)
    retryable = status >= 500 or status in RETRYABLE_4XX
    return DeliveryError(
        ErrorClass.HTTP_STATUS, said, permanent=not retryable, retry_after_s=_retry_after(exchange)
    )


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


def _retry_after(exchange: Exchange) -> float | None:
    value = _header(exchange, "retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _header(exchange: Exchange, name: str) -> str | None:
    for key, value in (exchange.headers or {}).items():
        if key.lower() == name:
            return value
    return None
