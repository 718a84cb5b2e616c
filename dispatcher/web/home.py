"""The front page: what this service is and where to go."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask.typing import ResponseReturnValue

blueprint = Blueprint("home", __name__)


@blueprint.get("/")
def index() -> ResponseReturnValue:
    settings = current_app.extensions["dispatcher.settings"]
    return render_template("index.html", demo_mode=settings.demo_mode)
