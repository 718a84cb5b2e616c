"""Health for probes: `/livez`, the process answers (touches nothing it depends on, so an outage of the
database or Redis never gets a healthy web server restarted); `/readyz`, it can reach its database and
Redis, else 503 naming what is down (take it out of the load balancer). `/healthz` is `/readyz`, kept for
the probes and scripts that already call it."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from dispatcher.broker import get_broker
from dispatcher.db import get_db

blueprint = Blueprint("health", __name__)


@blueprint.get("/livez")
def livez() -> ResponseReturnValue:
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> ResponseReturnValue:
    checks = {
        "database": _state(lambda: get_db(current_app).ping()),
        "redis": _state(lambda: get_broker(current_app).ping()),
    }
    down = sorted(name for name, state in checks.items() if state != "ok")
    body: dict[str, object] = {"status": "ok" if not down else "down", "checks": checks}
    if down:
        body["error"] = f"unreachable: {', '.join(down)}"
    return jsonify(body), 503 if down else 200


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    return readyz()


def _state(ping: Callable[[], object]) -> str:
    try:
        ping()
    except Exception as exc:  # any failure to reach it is the answer, not an error of ours
        return f"down: {type(exc).__name__}"
    return "ok"
