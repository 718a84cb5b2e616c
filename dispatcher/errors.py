"""Errors as the contract promises: JSON `{"error", "fields"}` for the API, a page for browsers."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from dispatcher.validation import FieldError


def wants_json() -> bool:
    return request.path.startswith(("/api/", "/s2s/", "/healthz", "/livez", "/readyz")) or request.is_json


def _page() -> str:
    """An error page in the shell of the part of the site it happened in (a console user stays in it)."""
    if request.path.startswith("/support/"):
        return "support/error.html"
    return "advertiser/error.html" if request.path.startswith("/advertiser/") else "error.html"


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    if wants_json():
        return jsonify({"error": exc.description or exc.name, "fields": {}}), status
    return render_template(_page(), status=status, title=exc.name, message=exc.description), status


def _field_error(exc: FieldError) -> ResponseReturnValue:
    message = str(exc)  # FieldError words it: the field, the problem and the value given, if any
    if wants_json():
        return jsonify({"error": message, "fields": {exc.field: exc.problem}}), exc.status
    title = "Request Entity Too Large" if exc.status == 413 else "Bad request"  # werkzeug's name for a 413
    return render_template(_page(), status=exc.status, title=title, message=message), exc.status


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(FieldError, _field_error)
