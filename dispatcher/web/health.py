"""Health for probes: `/livez`, the process answers (touches nothing it depends on, so an outage of the
database or Redis never gets a healthy web server restarted); `/readyz`, it can reach its database and
Redis, else 503 naming what is down (take it out of the load balancer). `/healthz` is `/readyz`, kept for
the probes and scripts that already call it.

`/readyz` also says how many workers and pumps are alive (`delivery`), as information only: a web host
records sales without them (the deliveries wait in the database), so no worker is never a reason to take
it out of the load balancer. `delivery.status` is `degraded` then, for an alert rather than a restart."""

from __future__ import annotations

from collections.abc import Callable

import redis
from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from dispatcher import heartbeats
from dispatcher.broker import get_broker
from dispatcher.db import get_db

blueprint = Blueprint("health", __name__)

NO_WORKER = "no worker alive: sales are recorded, their postbacks wait until a worker starts"
NO_PUMP = "no pump alive: retries and lost jobs are not handed to the workers"


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
    body["delivery"] = _delivery() if checks["redis"] == "ok" else _UNKNOWN
    return jsonify(body), 503 if down else 200


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    return readyz()


_UNKNOWN: dict[str, object] = {"status": "unknown", "workers": None, "pumps": None}


def _delivery() -> dict[str, object]:
    """Workers and pumps alive, never a cause of 503 (see the module's docstring)."""
    try:
        found = heartbeats.read(get_broker(current_app).client())
    except redis.RedisError:
        return _UNKNOWN
    warnings = [text for text, none in ((NO_WORKER, not found.workers), (NO_PUMP, not found.pumps)) if none]
    answer: dict[str, object] = {
        "status": "degraded" if warnings else "ok",
        "workers": len(found.workers),
        "pumps": len(found.pumps),
    }
    if warnings:
        answer["warnings"] = warnings
    return answer


def _state(ping: Callable[[], object]) -> str:
    try:
        ping()
    except Exception as exc:  # any failure to reach it is the answer, not an error of ours
        return f"down: {type(exc).__name__}"
    return "ok"
