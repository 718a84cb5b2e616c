"""What an answer means: success, try again later, or give up (and whether to pause the postback)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from dispatcher.egress.client import Exchange
from dispatcher.egress.errors import DeliveryError
from dispatcher.models import ErrorClass

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
