"""Parsing the raw values advertisers send (JSON, query strings, CSV cells) into typed ones.

Every failure is a `FieldError` naming the field and the value. Values arrive as `object` because JSON may
give a number where a query string gives text; floats never arrive
(JSON is parsed with `parse_float=Decimal`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation, localcontext

from dispatcher.currencies import is_currency, minor_units
from dispatcher.validation import FieldError

# Money columns hold NUMERIC(18, 4); anything this large is a typo, not a sale.
MAX_AMOUNT = Decimal("1000000000000")
# As many digits as an amount may be written with (the length allowed for text amounts): enough for any real
# amount with trailing zeros, and a 10,000-digit JSON number is refused before any arithmetic on it.
MAX_DIGITS = 40
_NUMERIC_TEXT = re.compile(r"[+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?")
# Wide enough that no amount of at most MAX_DIGITS digits is rounded while checked: the default context's 28
# digits rounded 1.0000000000000000000000000000001 to 1 and let it through.
EXACT = Context(prec=MAX_DIGITS + 10)
# Clocks differ: an event time up to this far in the future is taken as now-ish, not refused.
CLOCK_SKEW = timedelta(minutes=5)
MAX_TIME_LENGTH = 40
# C0 control characters and DEL; one regex search instead of a Python loop over every character.
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def text(field: str, value: object, *, max_length: int) -> str:
    """Required text; JSON numbers are taken as their digits (order numbers are often numeric)."""
    if is_blank(value):
        raise FieldError(field, value, "is required")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise FieldError(field, value, "must be text")
    cleaned = str(value).strip()
    if len(cleaned) > max_length:
        raise FieldError(field, _clip(value), f"must be at most {max_length} characters")
    if _CONTROL.search(cleaned):
        raise FieldError(field, value, "must not contain control characters")
    if not _encodable(cleaned):
        raise FieldError(field, _clip(value), "must be valid Unicode text (a lone surrogate is not)")
    return cleaned


def _encodable(value: str) -> bool:
    """False for a lone surrogate (JSON's "\\ud800"): Python holds it, but no database driver can store it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def optional_text(field: str, value: object, *, max_length: int) -> str | None:
    return None if is_blank(value) else text(field, value, max_length=max_length)


def optional_id(field: str, value: object) -> int | None:
    if is_blank(value):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise FieldError(field, value, "must be a whole number")
    raw = str(value).strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise FieldError(field, _clip(value), "must be a positive whole number")
    number = int(raw)
    if number < 1:
        raise FieldError(field, value, "must be a positive whole number")
    return number


def choice(field: str, value: object, choices: tuple[str, ...], default: str) -> str:
    if is_blank(value):
        return default
    word = str(value).strip().lower() if isinstance(value, str) else value
    if word not in choices:
        raise FieldError(field, _clip(value), f"must be one of {', '.join(choices)}")
    assert isinstance(word, str)
    return word


def currency(field: str, value: object) -> str | None:
    if is_blank(value):
        return None
    code = value.strip().upper() if isinstance(value, str) else ""
    if not is_currency(code):
        raise FieldError(field, _clip(value), "must be an ISO 4217 currency code such as USD or EUR")
    return code


def amount(field: str, value: object) -> Decimal:
    """A non-negative decimal amount given as a JSON number or as text like "19.99"."""
    if is_blank(value):
        raise FieldError(field, value, "is required")
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise FieldError(field, value, "must be a number like 19.99")
    # Room for a sign, a point and an exponent beside the digits; longer text has too many digits (said so,
    # not "must be a number": a 40-digit amount with its point is still a number).
    if isinstance(value, str) and len(value.strip()) > MAX_DIGITS + 8:
        looks_numeric = _NUMERIC_TEXT.fullmatch(value.strip()) is not None
        problem = f"must have at most {MAX_DIGITS} digits" if looks_numeric else "must be a number like 19.99"
        raise FieldError(field, _clip(value), problem)
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise FieldError(field, value, "must be a number like 19.99") from None
    if not number.is_finite():
        raise FieldError(field, value, "must be a number like 19.99")
    if len(number.as_tuple().digits) > MAX_DIGITS:
        raise FieldError(field, _clip(value), f"must have at most {MAX_DIGITS} digits")
    if number < 0:
        raise FieldError(field, value, "must not be negative")
    if number >= MAX_AMOUNT:
        raise FieldError(field, value, f"must be less than {MAX_AMOUNT}")
    # -0 is not below 0, yet would be stored and answered as "-0.00": a zero amount has no sign.
    return number.copy_abs() if number.is_zero() else number


def in_currency(field: str, number: Decimal, code: str, raw: object) -> Decimal:
    """`number` checked against the currency's minor units: 19.999 USD or 5.5 JPY are refused."""
    digits = minor_units(code)
    with localcontext(EXACT):
        try:
            quantized = number.quantize(minor_unit(code))
        except InvalidOperation:  # more digits than even EXACT holds: amount() refuses those first
            raise FieldError(field, _clip(raw), f"must have at most {MAX_DIGITS} digits") from None
    if quantized != number:  # Decimal comparison is exact, whatever the context's precision
        raise FieldError(field, _clip(raw), f"must have at most {digits} decimals for {code}")
    return quantized


def minor_unit(code: str) -> Decimal:
    """The smallest amount of the currency: 0.01 USD, 1 JPY, 0.001 KWD."""
    return Decimal(1).scaleb(-minor_units(code))


def event_time(field: str, value: object, now: datetime, *, not_before: datetime | None) -> datetime:
    """ISO 8601 (a time without offset is UTC) or Unix seconds; at most CLOCK_SKEW in the future."""
    if is_blank(value):
        return now
    moment = _parse_time(field, value)
    if moment > now + CLOCK_SKEW:
        raise FieldError(field, value, "must not be in the future")
    if not_before is not None and moment < not_before:
        raise FieldError(field, value, f"must not be before the click ({not_before.isoformat()})")
    return moment


def _parse_time(field: str, value: object) -> datetime:
    problem = "must be an ISO 8601 time like 2026-11-20T14:30:00Z or Unix seconds"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise FieldError(field, value, problem)
    raw = str(value).strip()
    if len(raw) > MAX_TIME_LENGTH:
        raise FieldError(field, _clip(value), problem)
    try:
        if raw.isascii() and raw.isdigit():
            return datetime.fromtimestamp(int(raw), UTC)
        parsed = datetime.fromisoformat(raw)
        # Inside the try: an offset can move a time past year 1 or 9999 (0001-01-01T00:00:00+01:00).
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        raise FieldError(field, value, problem) from None


def _clip(value: object) -> object:
    """Oversize values are echoed in errors only in part."""
    if isinstance(value, str) and len(value) > 64:
        return value[:64] + "..."
    return value
