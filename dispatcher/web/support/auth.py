"""Logging in and out of the support console (separate from the publisher portal's login)."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from dispatcher.login_limits import LoginLimiter
from dispatcher.staff_auth import authenticate, staff_user
from dispatcher.web import signin
from dispatcher.web.signin import SignIn
from dispatcher.web.support.common import blueprint, is_staff, redis_client

LOGIN_PAGE = "support/login.html"


def _safe_next(target: str | None) -> str:
    return signin.safe_path(target, "/support", url_for("support.dashboard"))


@blueprint.get("/login")
def login() -> ResponseReturnValue:
    if is_staff():
        return redirect(_safe_next(request.args.get("next")))
    return render_template(LOGIN_PAGE, email="", next=request.args.get("next", ""))


@blueprint.post("/login")
def login_submit() -> ResponseReturnValue:
    limiter = LoginLimiter(redis_client(), prefix="support:login")
    return signin.submit(SignIn(LOGIN_PAGE, limiter, authenticate, staff_user, _safe_next))


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    return signin.sign_out("support.login")
