"""The advertiser portal (`/advertiser/...`), one module per subject; `common` holds what they share."""

from __future__ import annotations

from flask import Flask

from dispatcher import advertiser_auth
from dispatcher.web.advertiser_portal import account, auth, bulk, integration, transactions, uploads
from dispatcher.web.advertiser_portal.common import blueprint

__all__ = ["account", "auth", "blueprint", "bulk", "init_app", "integration", "transactions", "uploads"]


def init_app(app: Flask) -> None:
    advertiser_auth.register()
    app.register_blueprint(blueprint)
