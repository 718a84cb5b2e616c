"""The sign-in form both consoles share: rate limit, password check, a fresh session, a safe redirect."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, logout_user  # type: ignore[import-untyped]
from sqlalchemy.orm import Session

from dispatcher.db import request_session
from dispatcher.login import PortalUser, end_sessions, start_session
from dispatcher.login_limits import LoginLimiter

WRONG = "Wrong email or password."


@dataclass(frozen=True)
class SignIn:
    template: str
    limiter: LoginLimiter
    authenticate: Callable[[Session, str, str], Any | None]  # the account, or None
    principal: Callable[[Any], PortalUser]  # the account as a Flask-Login user
    safe_next: Callable[[str | None], str]


def submit(form: SignIn) -> ResponseReturnValue:
    email = request.form.get("email", "").strip().lower()
    password = request.form.get("password", "")
    target = request.form.get("next", "")
    ip = request.remote_addr or "unknown"
    limited = form.limiter.blocked(ip, email)
    if limited is not None:
        minutes = max(1, round(limited.retry_after_s / 60))
        message = f"Too many failed logins; try again in {minutes} minute{'s' if minutes != 1 else ''}."
        page = render_template(form.template, email=email, next=target, error=message)
        return page, 429, {"Retry-After": str(limited.retry_after_s)}
    account = form.authenticate(request_session(), email, password)
    if account is None:
        form.limiter.failed(ip, email)
        return render_template(form.template, email=email, next=target, error=WRONG), 401
    form.limiter.succeeded(ip, email)
    # A fresh session on login: nothing from before (a planted session id, another kind of user's login,
    # stale flashes) carries over.
    session.clear()
    start_session(form.principal(account))
    return redirect(form.safe_next(target))


def sign_out(login_endpoint: str) -> ResponseReturnValue:
    """Clearing the cookie is not enough: a copy of it would still sign in. Raising the account's session
    epoch ends this session and every copy of it (and the account's other sessions too)."""
    if current_user.is_authenticated:
        end_sessions(current_user)
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for(login_endpoint))


def safe_path(target: str | None, prefix: str, fallback: str) -> str:
    """Only a path under `prefix` on this site: anything else would make the login an open redirect."""
    if target and target.startswith(prefix) and not target.startswith(("//", "/\\")):
        return target
    return fallback
