"""Logging in and out of the portal."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user  # type: ignore[import-untyped]

from dispatcher.broker import get_broker
from dispatcher.db import request_session
from dispatcher.login import PUBLISHER, publisher_user
from dispatcher.portal.logins import LoginLimiter, authenticate
from dispatcher.web.portal.common import blueprint

WRONG = "Wrong email or password."


def _limiter() -> LoginLimiter:
    return LoginLimiter(get_broker(current_app).client())


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an absolute or scheme-relative URL would make the login an open redirect."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return url_for("portal.postbacks")


@blueprint.get("/login")
def login() -> ResponseReturnValue:
    if current_user.is_authenticated and current_user.kind == PUBLISHER:
        return redirect(_safe_next(request.args.get("next")))
    return render_template("portal/login.html", email="", next=request.args.get("next", ""))


@blueprint.post("/login")
def login_submit() -> ResponseReturnValue:
    email = request.form.get("email", "").strip().lower()
    password = request.form.get("password", "")
    target = request.form.get("next", "")
    ip = request.remote_addr or "unknown"
    limiter = _limiter()
    limited = limiter.blocked(ip, email)
    if limited is not None:
        minutes = max(1, round(limited.retry_after_s / 60))
        message = f"Too many failed logins; try again in {minutes} minute{'s' if minutes != 1 else ''}."
        page = render_template("portal/login.html", email=email, next=target, error=message)
        return page, 429, {"Retry-After": str(limited.retry_after_s)}
    publisher = authenticate(request_session(), email, password)
    if publisher is None:
        limiter.failed(ip, email)
        return render_template("portal/login.html", email=email, next=target, error=WRONG), 401
    limiter.succeeded(ip, email)
    # A fresh session on login: nothing from before (a planted session id, stale flashes) carries over.
    session.clear()
    login_user(publisher_user(publisher))
    return redirect(_safe_next(target))


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("portal.login"))
