"""What every session-authenticated page blueprint (portal, support) shares: CSRF on every form and strict
security headers. JavaScript lives in static files only (the CSP forbids inline script)."""

from __future__ import annotations

from flask import Blueprint, Response

from dispatcher.login import csrf

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def protect(blueprint: Blueprint) -> None:
    """CSRF-check every state-changing request of the blueprint and send the security headers."""
    blueprint.before_request(_protect_forms)
    blueprint.after_request(_security_headers)


def _protect_forms() -> None:
    csrf.protect()


def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    return response
