"""Checks at the boundary (CLI, forms, API). Every failure names the field and the bad value."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from dispatcher.currencies import is_currency
from dispatcher.models.parties import CommissionType
from dispatcher.models.types import MAX_ID, MONEY_PRECISION, MONEY_SCALE

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 8
MAX_URL_LENGTH = 2048
MAX_FLAT_COMMISSION = Decimal(10) ** (MONEY_PRECISION - MONEY_SCALE)


class FieldError(ValueError):
    status = 400  # what the web answers it with (dispatcher.errors)

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        # A missing value is named as missing, not as Python's None; JSON's true and 1e400 as JSON says them.
        shown = "" if value is None else f", got {_shown(value)}"
        super().__init__(f"{field}: {problem}{shown}")


class TooLarge(FieldError):
    """A body or file over its limit: a 413, its field named as a 400 names it."""

    status = 413


def _shown(value: object, depth: int = 0) -> str:
    """The refused value as the client wrote it: a string quoted, anything else as JSON says it (true,
    1E+400, [true, 1.5]); deeper than a few levels, elided."""
    if isinstance(value, str):
        return repr(value) if depth == 0 else json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if depth >= 3:
        return "…"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(item, depth + 1) for item in value) + "]"
    if isinstance(value, dict):
        items = (
            f"{json.dumps(str(key), ensure_ascii=False)}: {_shown(item, depth + 1)}"
            for key, item in value.items()
        )
        return "{" + ", ".join(items) + "}"
    return repr(value)


def text(field: str, value: str, *, max_length: int = 200) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise FieldError(field, value, "must not be empty")
    if len(cleaned) > max_length:
        raise FieldError(field, value, f"must be at most {max_length} characters")
    if any(ord(char) < 32 for char in cleaned):
        raise FieldError(field, value, "must not contain control characters")
    return cleaned


def email(field: str, value: str) -> str:
    cleaned = value.strip().lower()
    # A NUL or other control character is no address (and PostgreSQL refuses a NUL in any text).
    if len(cleaned) > 254 or not EMAIL_PATTERN.match(cleaned) or any(ord(char) < 32 for char in cleaned):
        raise FieldError(field, value, "must be an email address like name@example.com")
    return cleaned


def password(field: str, value: str) -> str:
    if len(value) < MIN_PASSWORD_LENGTH:
        raise FieldError(field, "***", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    return value


def positive_id(field: str, value: str | int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise FieldError(field, value, "must be a whole number") from None
    if number < 1:
        raise FieldError(field, value, "must be a positive id")
    if number > MAX_ID:  # ids are BIGINT: a larger number is nobody's, and the database cannot compare it
        raise FieldError(field, value, "is not an id (too large)")
    return number


def http_url(field: str, value: str) -> str:
    cleaned = value.strip()
    if len(cleaned) > MAX_URL_LENGTH:
        raise FieldError(field, value, f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(cleaned)
        parts.port  # noqa: B018 - evaluating it validates the port
    except ValueError:
        raise FieldError(field, value, "must be an absolute http:// or https:// URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FieldError(field, value, "must be an absolute http:// or https:// URL")
    if any(char.isspace() or ord(char) < 32 for char in cleaned):
        raise FieldError(field, value, "must not contain spaces or control characters")
    return cleaned


def currency(field: str, value: str) -> str:
    code = value.strip().upper()
    if not is_currency(code):
        raise FieldError(field, value, "must be an ISO 4217 currency code such as USD or EUR")
    return code


def commission(field: str, value: str) -> tuple[CommissionType, Decimal]:
    """`10%` is a percent of the sale amount; `5.00` is a flat amount per event."""
    raw = value.strip()
    is_percent = raw.endswith("%")
    number = raw[:-1].strip() if is_percent else raw
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise FieldError(field, value, "must be a percent like 10% or a flat amount like 5.00") from None
    if not amount.is_finite() or amount < 0:
        raise FieldError(field, value, "must be a percent like 10% or a flat amount like 5.00")
    if amount.as_tuple().exponent < -4:  # type: ignore[operator]
        raise FieldError(field, value, "must have at most 4 decimals")
    if amount >= MAX_FLAT_COMMISSION:  # more than the money column holds (it was a database error)
        raise FieldError(field, value, f"must be less than {MAX_FLAT_COMMISSION}")
    if is_percent:
        if amount > 100:
            raise FieldError(field, value, "must be a percent between 0% and 100%")
        return CommissionType.PERCENT, amount
    return CommissionType.FLAT, amount


def end_of_day(day: date) -> datetime:
    """The exclusive end of a `to` date: midnight UTC after it. The last date there is has no day after
    it (adding one overflows: it was a 500): its end is then the last moment there is."""
    if day == date.max:
        return datetime.max.replace(tzinfo=UTC)
    return datetime.combine(day + timedelta(days=1), time(), UTC)


def optional_day(args: Mapping[str, str], name: str) -> date | None:
    """A `from`/`to` date filter (blank: none); anything else than 2026-11-01 is a `FieldError` naming it."""
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FieldError(name, raw, "must be a date like 2026-11-01") from None


def only_known(args: Mapping[str, str], known: Sequence[str], what: str = "parameter") -> None:
    """A query with an unknown (a misspelt) parameter is a `FieldError` naming it: `stauts=approved` must not
    answer as if no filter had been given."""
    for name in args:
        if name not in known:
            raise FieldError(name, args[name], f"is not a {what}; known: {', '.join(known)}")
