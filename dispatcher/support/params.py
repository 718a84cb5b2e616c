"""Query parameters of the console's forms: text, choices, status codes and moments, each refused with a
`FieldError` naming the parameter."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from dispatcher.models.types import MAX_ID
from dispatcher.validation import FieldError, end_of_day, positive_id

# Ids are BIGINT: a larger number is nobody's id, and PostgreSQL would refuse to compare with it.


def text(args: Any, name: str) -> str | None:
    raw = str(args.get(name) or "").strip()
    if any(ord(char) < 32 for char in raw):
        raise FieldError(name, raw, "must not contain control characters")
    if len(raw) > 255:
        raise FieldError(name, raw[:40] + "...", "must be at most 255 characters")
    return raw or None


def choice(args: Any, name: str, choices: tuple[str, ...]) -> str | None:
    raw = text(args, name)
    if raw is not None and raw not in choices:
        raise FieldError(name, raw, f"must be one of {', '.join(choices)}")
    return raw


def status_code(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or not 100 <= int(raw) <= 599:
        raise FieldError("status_code", raw, "must be an HTTP status code from 100 to 599")
    return int(raw)


def moment(args: Any, name: str, *, end: bool) -> datetime | None:
    """A date (`to` includes the whole day) or an ISO 8601 time (UTC unless it says otherwise)."""
    raw = text(args, name)
    if raw is None:
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return end_of_day(day) if end else datetime.combine(day, time(), UTC)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise FieldError(
            name, raw, "must be a date like 2026-11-01 or a time like 2026-11-01T14:30"
        ) from None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last moment there is, in UTC
        raise FieldError(name, raw, "is past the last date there is") from None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "Z"


def row_id(args: Any, name: str) -> int | None:
    """An optional positive id within BIGINT."""
    raw = text(args, name)
    if raw is None:
        return None
    number = positive_id(name, raw)
    if number > MAX_ID:
        raise FieldError(name, raw, "is not an id (too large)")
    return number
