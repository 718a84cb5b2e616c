"""Session login (Flask-Login) for people: publishers now, staff later.

A session remembers a namespaced user id such as ``publisher:3``; each kind of user registers a loader, so the
support console (staff) can add ``staff:<id>`` without touching the publisher side. The session cookie is
HttpOnly and SameSite=Lax always, and Secure unless the app runs over plain http on purpose (tests, the demo):
`SESSION_COOKIE_SECURE` (environment or config dict, see dispatcher.config) overrides the default.

Flask's session is a signed cookie kept by the browser, so clearing it at logout does not stop a copy of it
from working. Each account has a `session_epoch`: a session remembers the epoch it signed in with and is only
honoured while the account's epoch is the same; logging out raises it (`end_sessions`: a password change, when
one is added, must call it too), which ends every session of that account, on every device, copies included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask, session
from flask_login import LoginManager, login_user  # type: ignore[import-untyped]
from flask_wtf.csrf import CSRFProtect  # type: ignore[import-untyped]
from sqlalchemy import update

from dispatcher import credentials
from dispatcher.db import request_session
from dispatcher.models import Publisher

PUBLISHER = "publisher"
EPOCH_KEY = "_epoch"  # in the session: the account's session_epoch when it signed in
Loader = Callable[[int], "PortalUser | None"]


@dataclass(frozen=True)
class PortalUser:
    """What Flask-Login keeps for a signed-in person; a plain value, not an ORM row (sessions close)."""

    kind: str
    id: int
    name: str
    email: str
    is_active: bool = True
    is_authenticated: bool = True
    is_anonymous: bool = False
    epoch: int = 0
    time_zone: str | None = None  # where the pages show times (None: UTC)

    def get_id(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class _Kind:
    loader: Loader
    model: Any  # the account table (Publisher, StaffUser): it has `session_epoch`


_kinds: dict[str, _Kind] = {}
csrf = CSRFProtect()


def register_kind(kind: str, loader: Loader, model: Any) -> None:
    _kinds[kind] = _Kind(loader, model)


def load_user(user_id: str) -> PortalUser | None:
    kind, _, number = user_id.partition(":")
    known = _kinds.get(kind)
    if known is None or not number.isdigit():
        return None
    user = known.loader(int(number))
    if user is None or session.get(EPOCH_KEY) != user.epoch:
        return None  # a session from before the last logout (a replayed cookie) is nobody's
    return user


def start_session(user: PortalUser) -> None:
    """Sign `user` in to the current (freshly cleared) session, bound to the account's current epoch."""
    login_user(user)
    session[EPOCH_KEY] = user.epoch


def end_sessions(user: PortalUser) -> None:
    """End every session of the account: the epoch they carry is no longer the account's. Committed."""
    model = _kinds[user.kind].model
    db = request_session()
    db.execute(update(model).where(model.id == user.id).values(session_epoch=model.session_epoch + 1))
    db.commit()


def publisher_user(publisher: Publisher) -> PortalUser:
    return PortalUser(
        PUBLISHER,
        publisher.id,
        publisher.name,
        publisher.email,
        publisher.active,
        epoch=publisher.session_epoch,
        time_zone=publisher.time_zone,
    )


def _load_publisher(publisher_id: int) -> PortalUser | None:
    publisher = request_session().get(Publisher, publisher_id)
    if publisher is None or not publisher.active:
        return None
    return publisher_user(publisher)


def init_app(app: Flask) -> None:
    manager = LoginManager()
    manager.login_view = "portal.login"
    manager.login_message = "Please log in to continue."
    manager.login_message_category = "info"
    # "strong": a session whose IP/user agent fingerprint changes is dropped, not just marked stale.
    manager.session_protection = "strong"
    manager.user_loader(load_user)
    manager.init_app(app)
    # Made now: the first login with an unknown email must not pay for making it as well as checking it.
    credentials.dummy_hash(app.extensions["dispatcher.settings"].password_method)
    register_kind(PUBLISHER, _load_publisher, Publisher)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=_secure_cookie(app),
        PERMANENT_SESSION_LIFETIME=app.config.get("PERMANENT_SESSION_LIFETIME", timedelta(hours=12)),
    )


def _secure_cookie(app: Flask) -> bool:
    configured: bool | None = app.extensions["dispatcher.settings"].session_cookie_secure
    if configured is None:
        # Tests and the demo run over http://127.0.0.1; a Secure cookie would never come back there.
        return not (app.testing or app.extensions["dispatcher.settings"].demo_mode)
    return configured


def init_csrf(app: Flask) -> None:
    """CSRF for session-authenticated forms only: pages call `csrf.protect()` themselves (see the portal
    blueprint), so token-authenticated APIs, the S2S URL, clicks and the demo receiver are untouched."""
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    # The token lives as long as the session; an hour's limit would fail forms left open over lunch.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)
