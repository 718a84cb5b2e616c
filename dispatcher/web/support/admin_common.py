"""What the network administration pages (`/support/admin/...`, admin role) share: the list window from the
query, paging, and reading the forms' checkboxes, status buttons, passwords and grace periods.

The pages are a face on `dispatcher.accounts`, `dispatcher.account_admin` and `dispatcher.account_edits`:
they validate nothing of their own beyond what a form field is (a checkbox, a choice) and audit through them.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from dispatcher.account_admin import Window, grace_period
from dispatcher.support import params
from dispatcher.validation import FieldError

PAGE_SIZE = 50
# The grace periods the rotation form offers (the CLI takes any up to 30 days).
GRACE_CHOICES = {"0": "None: the old one stops now", "1h": "1 hour", "24h": "24 hours", "7d": "7 days"}
GENERATED_PASSWORD_BYTES = 12  # 16 URL-safe characters


def window(args: Mapping[str, str]) -> Window:
    """`q` (a part of a name or email, or an id) and `after` (the last id of the previous page)."""
    return Window(params.text(args, "q"), params.row_id(args, "after"), PAGE_SIZE + 1)


def paged(rows: list[dict[str, Any]], args: Mapping[str, str]) -> dict[str, Any]:
    """The template's `rows`, `q` and `next_args` (None on the last page), from one row more than a page."""
    query = params.text(args, "q")
    more = len(rows) > PAGE_SIZE
    shown = rows[:PAGE_SIZE]
    next_args = {"after": shown[-1]["id"], **({"q": query} if query else {})} if more else None
    return {"rows": shown, "q": query or "", "next_args": next_args}


def checkbox(form: Mapping[str, str], name: str) -> bool:
    return form.get(name) in ("on", "1", "true", "yes")


def active_choice(form: Mapping[str, str]) -> bool:
    """The status buttons send `active=1` (reactivate) or `active=0` (deactivate)."""
    value = form.get("active", "")
    if value not in ("0", "1"):
        raise FieldError("active", value, "must be 1 (reactivate) or 0 (deactivate)")
    return value == "1"


def password_from(form: Mapping[str, str]) -> tuple[str, bool]:
    """The typed password, or with `generate` set a new random one; True when generated (shown once)."""
    if checkbox(form, "generate"):
        return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES), True
    return form.get("password", ""), False


def grace_choice(form: Mapping[str, str]) -> timedelta:
    value = form.get("grace", "0")
    if value not in GRACE_CHOICES:
        raise FieldError("grace", value, f"must be one of {', '.join(GRACE_CHOICES)}")
    return grace_period("grace", value)
