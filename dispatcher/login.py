"""Session login (Flask-Login) for people: publishers now, staff later.

A session remembers a namespaced user id such as ``publisher:3``; each kind of user registers a loader, so the
support console (staff) can add ``staff:<id>`` without touching the publisher side. The session cookie is
HttpOnly and SameSite=Lax always, and Secure unless the app runs over plain http on purpose (tests, the demo):
`SESSION_COOKIE_SECURE` (environment or config dict, see dispatcher.config) overrides the default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask
from flask_login import LoginManager  # type: ignore[import-untyped]
from flask_wtf.csrf import CSRFProtect  # type: ignore[import-untyped]

from dispatcher.db import request_session
from dispatcher.models import Publisher

PUBLISHER = "publisher"
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

    def get_id(self) -> str:
        return f"{self.kind}:{self.id}"


_loaders: dict[str, Loader] = {}
csrf = CSRFProtect()


def register_kind(kind: str, loader: Loader) -> None:
    _loaders[kind] = loader


def load_user(user_id: str) -> PortalUser | None:
    kind, _, number = user_id.partition(":")
    loader = _loaders.get(kind)
    if loader is None or not number.isdigit():
        return None
    return loader(int(number))


def publisher_user(publisher: Publisher) -> PortalUser:
    return PortalUser(PUBLISHER, publisher.id, publisher.name, publisher.email, publisher.active)


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
    register_kind(PUBLISHER, _load_publisher)
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
