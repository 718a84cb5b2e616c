"""Public identifiers handed to the outside world: unguessable, URL-safe, at most 32 characters."""

from __future__ import annotations

import re
import secrets

# 16 random bytes = 128 bits, 22 URL-safe characters: guessing one that exists is hopeless.
CLICK_ID_BYTES = 16
# Sales ids are shown to publishers (macro #flx_salesid#) and used in status URLs; 96 bits is plenty.
SALES_ID_BYTES = 12
# What any sales id is made of: token_urlsafe's alphabet, up to the column's 32 characters (ids made today
# are 16; the column and the tests' fixtures allow others of the same alphabet).
SALES_ID_LENGTH = 32
_SALES_ID_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{1,{SALES_ID_LENGTH}}}")


def new_click_id() -> str:
    return secrets.token_urlsafe(CLICK_ID_BYTES)


def new_sales_id() -> str:
    return secrets.token_urlsafe(SALES_ID_BYTES)


def could_be_sales_id(value: str) -> bool:
    """False for text no sales id can be, so it is refused before it reaches the database (PostgreSQL
    refuses a NUL in text with an error, not with no row)."""
    return _SALES_ID_SHAPE.fullmatch(value) is not None
