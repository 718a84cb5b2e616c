"""Column types that keep the two promises of the data model: money is Decimal, time is UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# The largest id a BigId column can hold; a larger number is nobody's id.
MAX_ID = 2**63 - 1

MONEY_PRECISION = 18
MONEY_SCALE = 4  # room for currencies with 3 minor digits (BHD, KWD) and a rounding digit


class Money(TypeDecorator[Decimal]):
    """NUMERIC(18, 4) on PostgreSQL; exact decimal text on SQLite, whose NUMERIC is a float."""

    impl = Numeric(MONEY_PRECISION, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float) or not isinstance(value, (Decimal, int)):
            raise TypeError(f"money must be a Decimal, got {type(value).__name__} {value!r}")
        amount = Decimal(value)
        if not amount.is_finite():
            raise ValueError(f"money must be a finite amount, got {value!r}")
        if amount.as_tuple().exponent < -MONEY_SCALE:  # type: ignore[operator]
            raise ValueError(f"money has more than {MONEY_SCALE} decimals: {value!r}")
        return str(amount) if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value)


class UTCDateTime(TypeDecorator[datetime]):
    """timestamptz on PostgreSQL; naive UTC on SQLite. Always aware UTC in Python; naive input is refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: times are stored in UTC and must say so")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
