"""What the network administration pages (`/support/admin/...`, admin role) share: the list window from the
query, paging, and reading the forms' checkboxes, status buttons, passwords and grace periods.

The pages are a face on `dispatcher.accounts`, `dispatcher.account_admin` and `dispatcher.account_edits`:
they validate nothing of their own beyond what a form field is (a checkbox, a choice) and audit through them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from flask import render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from dispatcher.account_admin import Window, grace_period
from dispatcher.db import request_session
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


def list_page(
    template: str, rows_of: Callable[[Session, Window], list[dict[str, Any]]]
) -> ResponseReturnValue:
    """A list page: the window from the query (a bad `after` is a 400 on the page), one page of `rows_of`."""
    try:
        rows = rows_of(request_session(), window(request.args))
    except FieldError as error:
        return render_template(template, rows=[], q="", next_args=None, error=error), 400
    return render_template(template, error=None, **paged(rows, request.args))


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
