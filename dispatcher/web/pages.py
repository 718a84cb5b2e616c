"""Page protections: CSRF on every form of the session-authenticated blueprints (portal, support), and
security headers on every response of the app.

The headers are app-wide, not only on the consoles' pages: the front page, error pages, the demo pages and
the JSON APIs are served from the same origin, and any of them framed or content-sniffed would do as much
harm. JavaScript lives in static files only (the CSP forbids inline script and inline event handlers).
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response
from flask.blueprints import BlueprintSetupState

from dispatcher.login import csrf

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
# app.extensions key: the names of the blueprints whose forms are CSRF-checked (sessions sign their users in).
SESSION_BLUEPRINTS = "dispatcher.session_blueprints"


def protect(blueprint: Blueprint) -> None:
    """CSRF-check every state-changing request of the blueprint, keep its pages out of caches, and make sure
    the app sends the security headers."""
    blueprint.before_request(_protect_forms)
    blueprint.after_request(_no_store)
    blueprint.record_once(_register)


def session_blueprints(app: Flask) -> frozenset[str]:
    names: set[str] = app.extensions.get(SESSION_BLUEPRINTS, set())
    return frozenset(names)


def _register(state: BlueprintSetupState) -> None:
    app = state.app
    app.extensions.setdefault(SESSION_BLUEPRINTS, set()).add(state.blueprint.name)
    hooks = app.after_request_funcs.setdefault(None, [])
    if _security_headers not in hooks:  # both consoles call protect(); the app needs the hook once
        app.after_request(_security_headers)


def _protect_forms() -> None:
    csrf.protect()


def _no_store(response: Response) -> Response:
    # Signed-in pages show deliveries, tokens just issued, receivers' answers: nothing for a shared cache.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response
