"""Public identifiers handed to the outside world: unguessable, URL-safe, at most 32 characters."""

from __future__ import annotations

import secrets

# 16 random bytes = 128 bits, 22 URL-safe characters: guessing one that exists is hopeless.
CLICK_ID_BYTES = 16
# Sales ids are shown to publishers (macro #flx_salesid#) and used in status URLs; 96 bits is plenty.
SALES_ID_BYTES = 12


def new_click_id() -> str:
    return secrets.token_urlsafe(CLICK_ID_BYTES)


def new_sales_id() -> str:
    return secrets.token_urlsafe(SALES_ID_BYTES)
