"""What every support page shares: the blueprint, CSRF on every form, a strict CSP, the staff guards.

Only a `staff:<id>` session passes `staff_required`; anyone else (anonymous or a publisher) is sent to the
support login before any data is read. JavaScript lives in static files (the CSP forbids inline script), and
templates autoescape: receivers' answers shown here are hostile text.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from typing import ParamSpec

from flask import Blueprint, abort, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user  # type: ignore[import-untyped]

from dispatcher.currencies import MINOR_UNITS
from dispatcher.staff_auth import STAFF
from dispatcher.web import pages
from dispatcher.web.lookups import found as found
from dispatcher.web.lookups import redis_client as redis_client

P = ParamSpec("P")

blueprint = Blueprint("support", __name__, url_prefix="/support")


pages.protect(blueprint)


@blueprint.app_template_filter("money")
def money(amount: Decimal | None, currency: str) -> str:
    """An amount at its currency's decimals (PostgreSQL keeps four: 100.0000 is shown as 100.00)."""
    if amount is None:
        return ""
    return f"{amount.quantize(Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2)))}"


def is_staff() -> bool:
    return bool(current_user.is_authenticated) and current_user.kind == STAFF


def staff_required(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    """Pages for signed-in staff; anyone else goes to the support login (and comes back after)."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        if not is_staff():
            return redirect(url_for("support.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped


def admin_required(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    """Staff pages only admins may use (bulk replay, network administration); support staff get 403."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        if not is_staff():
            return redirect(url_for("support.login", next=request.full_path.rstrip("?")))
        if not current_user.is_admin:
            abort(403, description="This needs the admin role.")
        return view(*args, **kwargs)

    return wrapped


def staff_id() -> int:
    number: int = current_user.id
    return number
