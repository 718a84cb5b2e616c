"""Logging in and out of the portal."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user  # type: ignore[import-untyped]

from dispatcher.broker import get_broker
from dispatcher.login import PUBLISHER, publisher_user
from dispatcher.login_limits import LoginLimiter
from dispatcher.publisher_auth import authenticate
from dispatcher.web import signin
from dispatcher.web.portal.common import blueprint
from dispatcher.web.signin import SignIn


def _limiter() -> LoginLimiter:
    return LoginLimiter(get_broker(current_app).client())


def _safe_next(target: str | None) -> str:
    return signin.safe_path(target, "/", url_for("portal.postbacks"))


@blueprint.get("/login")
def login() -> ResponseReturnValue:
    if current_user.is_authenticated and current_user.kind == PUBLISHER:
        return redirect(_safe_next(request.args.get("next")))
    return render_template("portal/login.html", email="", next=request.args.get("next", ""))


@blueprint.post("/login")
def login_submit() -> ResponseReturnValue:
    form = SignIn("portal/login.html", _limiter(), authenticate, publisher_user, _safe_next)
    return signin.submit(form)


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    return signin.sign_out("portal.login")
