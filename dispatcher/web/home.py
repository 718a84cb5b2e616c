"""The front page: what this service is and where to go."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, send_from_directory
from flask.typing import ResponseReturnValue

blueprint = Blueprint("home", __name__)


@blueprint.get("/")
def index() -> ResponseReturnValue:
    settings = current_app.extensions["dispatcher.settings"]
    return render_template("index.html", demo_mode=settings.demo_mode)


@blueprint.get("/favicon.ico")
def favicon() -> ResponseReturnValue:
    """Browsers ask for /favicon.ico whatever the page says; the icon is an SVG (every current browser)."""
    assert current_app.static_folder is not None
    folder = current_app.static_folder
    return send_from_directory(folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400)
