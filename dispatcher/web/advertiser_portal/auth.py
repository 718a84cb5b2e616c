"""Logging in and out of the advertiser portal (separate from the publisher portal's and the console's)."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from dispatcher.advertiser_auth import advertiser_user, authenticate
from dispatcher.login_limits import LoginLimiter
from dispatcher.web import signin
from dispatcher.web.advertiser_portal.common import blueprint, is_advertiser, redis_client
from dispatcher.web.signin import SignIn

LOGIN_PAGE = "advertiser/login.html"


def _safe_next(target: str | None) -> str:
    return signin.safe_path(target, "/advertiser", url_for("advertiser.transactions_list"))


@blueprint.get("/login")
def login() -> ResponseReturnValue:
    if is_advertiser():
        return redirect(_safe_next(request.args.get("next")))
    return render_template(LOGIN_PAGE, email="", next=request.args.get("next", ""))


@blueprint.post("/login")
def login_submit() -> ResponseReturnValue:
    limiter = LoginLimiter(redis_client(), prefix="advertiser:login")
    return signin.submit(SignIn(LOGIN_PAGE, limiter, authenticate, advertiser_user, _safe_next))


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    return signin.sign_out("advertiser.login")
