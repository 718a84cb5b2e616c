"""GET /healthz: can this process reach its database and Redis? 503 naming what is down."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from dispatcher.broker import get_broker
from dispatcher.db import get_db

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    checks: dict[str, str] = {}
    try:
        get_db(current_app).ping()
        checks["database"] = "ok"
    except Exception as exc:  # any failure to reach it is the answer, not an error of ours
        checks["database"] = f"down: {type(exc).__name__}"
    try:
        get_broker(current_app).ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"down: {type(exc).__name__}"
    down = sorted(name for name, state in checks.items() if state != "ok")
    body = {"status": "ok" if not down else "down", "checks": checks}
    if down:
        body["error"] = f"unreachable: {', '.join(down)}"
    return jsonify(body), 503 if down else 200
