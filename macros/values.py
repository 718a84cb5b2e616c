"""Turning one value into text, by kind. Float is refused everywhere: money must stay exact."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation

from macros.errors import MacroError

_MONEY = Context(prec=60, rounding=ROUND_HALF_UP)
_CENT = Decimal(1).scaleb(-2)
_UNIT = Decimal(1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_TWO_DIGITS = tuple(f"{n:02d}" for n in range(100))


def _refuse(value: object, what: str) -> TypeError:
    return TypeError(f"{what} value must not be {type(value).__name__}, got {value!r}")


def text(value: object) -> str:
    if isinstance(value, str):
        # str.__str__, not str(): a (str, Enum) member must give its value, not "Status.APPROVED".
        return str.__str__(value)
    if isinstance(value, float | bool | bytes | bytearray):
        raise _refuse(value, "text")
    return str(value)


def integer(value: object) -> str:
    if value.__class__ is int or value.__class__ is str:
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    raise _refuse(value, "integer")


def money(value: object) -> Decimal:
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int) and not isinstance(value, bool):
        amount = Decimal(value)
    else:
        raise _refuse(value, "money")
    if not amount.is_finite():
        raise MacroError(f"money value must be finite, got {amount}")
    return amount


def decimals(value: object, places: int) -> str:
    """Round half up to `places` decimals; dot separator, no exponent, no negative zero."""
    try:
        rounded = money(value).quantize(_CENT if places == 2 else _UNIT.scaleb(-places), context=_MONEY)
    except InvalidOperation as exc:
        raise MacroError(f"money value {value!r} is too large") from exc
    if not rounded:
        rounded = rounded.copy_abs()
    return str(rounded)


def decimals2(value: object) -> str:
    if value.__class__ is Decimal:
        # Amounts from a NUMERIC(_, 2) column already have two places: str() is the answer, 3x faster.
        s = str(value)
        if s[-3:-2] == "." and "E" not in s and s != "-0.00":
            return s
    return decimals(value, 2)


def cents(value: object) -> str:
    return str(int(money(value).scaleb(2).quantize(_UNIT, context=_MONEY)))


def utc(value: object) -> datetime:
    """Naive datetimes are taken as UTC; ints as unix seconds."""
    if isinstance(value, datetime):
        tz = value.tzinfo
        if tz is UTC:
            return value
        if tz is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    raise _refuse(value, "time")


def _iso_formatter(colon: str) -> Callable[[object], str]:
    two = _TWO_DIGITS

    def iso(value: object) -> str:
        if isinstance(value, datetime) and (value.tzinfo is UTC or value.tzinfo is None):
            dt = value
        else:
            dt = utc(value)
        # Table lookups instead of isoformat(): 2x faster, and no offset to strip.
        hms = f"{two[dt.hour]}{colon}{two[dt.minute]}{colon}{two[dt.second]}"
        return f"{dt.year:04d}-{two[dt.month]}-{two[dt.day]}T{hms}Z"

    return iso


iso = _iso_formatter(":")
# Already percent-encoded: the only character of iso() outside the unreserved set is ':'.
iso_percent = _iso_formatter("%3A")


def unix(value: object) -> str:
    if value.__class__ is int:
        return str(value)
    return str((utc(value) - _EPOCH) // _SECOND)


def date(value: object) -> str:
    return utc(value).date().isoformat()


def strftime(value: object, pattern: str) -> str:
    return utc(value).strftime(pattern)
