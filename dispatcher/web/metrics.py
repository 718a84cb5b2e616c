"""GET /metrics: Prometheus text format, for a scraper only.

With `METRICS_TOKEN` set, a request needs `Authorization: Bearer <METRICS_TOKEN>`. Without it, only a direct
request from this host (a loopback client and no proxy header) is answered, so a public deployment never shows
its volumes by accident; everything else is 403 naming the setting. Behind a trusted proxy (`TRUSTED_PROXIES`)
the same holds: a scrape through the proxy carries its forwarding headers and is not local, whatever address
it forwards; the token is the way to scrape remotely.
"""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dispatcher import metrics
from dispatcher.broker import get_broker
from dispatcher.config import Settings
from dispatcher.db import get_db

blueprint = Blueprint("metrics", __name__)
PROXY_HEADERS = ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-IP", "Forwarded")
# Where werkzeug's ProxyFix (app.py, TRUSTED_PROXIES) keeps the environ values it replaced.
PROXY_FIX_ORIGINAL = "werkzeug.proxy_fix.orig"


@blueprint.get("/metrics")
def scrape() -> Response:
    _allowed_or_abort()
    found = metrics.registry(get_db(current_app).session_factory, get_broker(current_app).client())
    return Response(generate_latest(found), mimetype=CONTENT_TYPE_LATEST)


def _allowed_or_abort() -> None:
    settings: Settings = current_app.extensions["dispatcher.settings"]
    if settings.metrics_token:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), settings.metrics_token):
            abort(401, description="Authorization: Bearer <METRICS_TOKEN> is missing or wrong")
        return
    if not _direct_local_request():
        abort(403, description="metrics are only served to this host; set METRICS_TOKEN to scrape remotely")


def _direct_local_request() -> bool:
    if any(header in request.headers for header in PROXY_HEADERS):
        return False
    # The connecting address, not the one a trusted proxy forwarded: only this host's own clients are local.
    original: dict[str, str | None] = request.environ.get(PROXY_FIX_ORIGINAL, {})
    connecting = original.get("REMOTE_ADDR", request.remote_addr)
    try:
        return ipaddress.ip_address(connecting or "").is_loopback
    except ValueError:
        return False
