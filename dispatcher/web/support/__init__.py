"""The support console's pages (`/support/...`), one module per subject; `common` holds what they share."""

from __future__ import annotations

from flask import Flask

from dispatcher import staff_auth
from dispatcher.web.support import (
    account,
    admin_advertisers,
    admin_programs,
    admin_publishers,
    admin_staff,
    auth,
    dashboard,
    deliveries,
    postbacks,
    replays,
)
from dispatcher.web.support.common import blueprint

__all__ = [
    "account",
    "admin_advertisers",
    "admin_programs",
    "admin_publishers",
    "admin_staff",
    "auth",
    "blueprint",
    "dashboard",
    "deliveries",
    "init_app",
    "postbacks",
    "replays",
]


def init_app(app: Flask) -> None:
    staff_auth.register()
    app.register_blueprint(blueprint)
