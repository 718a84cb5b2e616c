"""Logging in and out of the support console (separate from the publisher portal's login)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_user, logout_user  # type: ignore[import-untyped]

from dispatcher.db import request_session
from dispatcher.portal.logins import LoginLimiter
from dispatcher.staff_auth import authenticate, staff_user
from dispatcher.web.support.common import blueprint, is_staff, redis_client

WRONG = "Wrong email or password."
LOGIN_PAGE = "support/login.html"


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: anything else would make the login an open redirect."""
    if target and target.startswith("/support") and not target.startswith(("//", "/\\")):
        return target
    return url_for("support.dashboard")


@blueprint.get("/login")
def login() -> ResponseReturnValue:
    if is_staff():
        return redirect(_safe_next(request.args.get("next")))
    return render_template(LOGIN_PAGE, email="", next=request.args.get("next", ""))


@blueprint.post("/login")
def login_submit() -> ResponseReturnValue:
    email = request.form.get("email", "").strip().lower()
    password = request.form.get("password", "")
    target = request.form.get("next", "")
    ip = request.remote_addr or "unknown"
    limiter = LoginLimiter(redis_client(), prefix="support:login")
    limited = limiter.blocked(ip, email)
    if limited is not None:
        minutes = max(1, round(limited.retry_after_s / 60))
        message = f"Too many failed logins; try again in {minutes} minute{'s' if minutes != 1 else ''}."
        page = render_template(LOGIN_PAGE, email=email, next=target, error=message)
        return page, 429, {"Retry-After": str(limited.retry_after_s)}
    staff = authenticate(request_session(), email, password)
    if staff is None:
        limiter.failed(ip, email)
        return render_template(LOGIN_PAGE, email=email, next=target, error=WRONG), 401
    limiter.succeeded(ip, email)
    # A fresh session: a publisher signed in on this browser is signed out, nothing carries over.
    session.clear()
    login_user(staff_user(staff))
    return redirect(_safe_next(target))


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("support.login"))
