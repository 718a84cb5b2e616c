"""What every advertiser portal page shares: the blueprint, CSRF on every form, a strict CSP, the login guard.

Only an `advertiser:<id>` session passes `advertiser_required`; anyone else (anonymous, a publisher, staff) is
sent to the advertiser login before any data is read. Every query is scoped to the signed-in user's
advertiser: another advertiser's transaction, upload or bulk change answers 404, like a missing one.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec

from flask import Blueprint, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user  # type: ignore[import-untyped]

from dispatcher.advertiser_auth import ADVERTISER_USER
from dispatcher.web import pages
from dispatcher.web.lookups import found as found
from dispatcher.web.lookups import redis_client as redis_client

P = ParamSpec("P")

blueprint = Blueprint("advertiser", __name__, url_prefix="/advertiser")

pages.protect(blueprint)


def is_advertiser() -> bool:
    return bool(current_user.is_authenticated) and current_user.kind == ADVERTISER_USER


def advertiser_required(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    """Pages for signed-in advertiser users; anyone else goes to the advertiser login (and back after)."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        if not is_advertiser():
            return redirect(url_for("advertiser.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped


def advertiser_id() -> int:
    number: int = current_user.advertiser_id
    return number


def user_id() -> int:
    number: int = current_user.id
    return number
