"""What every portal page shares: the blueprint, CSRF on every form, a strict CSP, the login guard.

JavaScript lives in static files only (the CSP forbids inline script), and templates autoescape: receivers'
response bodies shown in the delivery log are hostile text.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec

from flask import Blueprint, current_app, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user  # type: ignore[import-untyped]
from markupsafe import Markup, escape

from dispatcher.config import Settings
from dispatcher.login import PUBLISHER
from dispatcher.web import pages
from dispatcher.web.lookups import found as found

P = ParamSpec("P")

blueprint = Blueprint("portal", __name__, url_prefix="/portal")

pages.protect(blueprint)


@blueprint.app_template_filter("plain")
def plain(text: str) -> str:
    """Catalog text for an attribute (a tooltip, a label): its `code` marks are for Markdown (the README)."""
    return text.replace("`", "")


@blueprint.app_template_filter("inline_code")
def inline_code(text: str) -> Markup:
    """Catalog text for a page: escaped, with each `code` span set as <code>."""
    parts = str(escape(text)).split("`")
    return Markup("".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts)))


def publisher_required(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    """Pages for signed-in publishers; anyone else goes to the login page (and comes back after)."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        if not current_user.is_authenticated or current_user.kind != PUBLISHER:
            return redirect(url_for("portal.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped


def publisher_id() -> int:
    number: int = current_user.id
    return number


def settings() -> Settings:
    found: Settings = current_app.extensions["dispatcher.settings"]
    return found
