from __future__ import annotations

from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue, SimpleWorker

from app import create_app
from dispatcher.heartbeats import PumpHeartbeat
from dispatcher.queueing import LANES
from dispatcher.redis_server import free_port
from dispatcher.web.health import NO_PUMP, NO_WORKER
from tests.conftest import app_settings

READINESS = ["/readyz", "/healthz"]  # /healthz is readiness, kept for existing probes


def _worker_registered(client: redis.Redis) -> SimpleWorker:
    """An RQ worker of our queues in rq's registry, as `flask --app app worker` registers itself (the
    process itself: tests/workers/test_heartbeats.py)."""
    worker = SimpleWorker([Queue(name, connection=client) for name in LANES], connection=client)
    worker.register_birth()
    return worker


def dead_redis_app(tmp_path: Path, database_url: str) -> Flask:
    return create_app(app_settings(tmp_path, database_url, f"redis://127.0.0.1:{free_port()}/0"))


def dead_database_app(tmp_path: Path, redis_url: str, kind: str) -> Flask:
    unreachable = {
        # Nothing listens on that port: the connection is refused at once (connect_timeout bounds the rest).
        "postgresql": f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=1",
        # A file under a directory that does not exist: SQLite cannot open it.
        "sqlite": f"sqlite:///{tmp_path / 'no-such-directory' / 'db.sqlite'}",
    }[kind]
    return create_app(app_settings(tmp_path, unreachable, redis_url))


@pytest.mark.parametrize("path", READINESS)
def test_readiness_is_200_when_database_and_redis_answer(
    client: FlaskClient, clean_redis: redis.Redis, path: str
) -> None:
    _worker_registered(clean_redis)
    PumpHeartbeat(clean_redis, ttl_s=30).beat(passed=True)

    response = client.get(path)

    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok"},
        "delivery": {"status": "ok", "workers": 1, "pumps": 1},
    }


@pytest.mark.parametrize(
    ("workers", "pumps", "warnings"),
    [(0, 0, [NO_WORKER, NO_PUMP]), (0, 1, [NO_WORKER]), (2, 0, [NO_PUMP])],
)
def test_no_worker_or_no_pump_is_a_degraded_delivery_but_still_ready(
    client: FlaskClient, clean_redis: redis.Redis, workers: int, pumps: int, warnings: list[str]
) -> None:
    for _ in range(workers):
        _worker_registered(clean_redis)
    for _ in range(pumps):
        PumpHeartbeat(clean_redis, ttl_s=30).beat(passed=True)

    response = client.get("/readyz")

    # A web host records sales without workers: taking it out of the load balancer would lose them.
    assert response.status_code == 200
    assert response.json is not None and response.json["status"] == "ok"
    assert response.json["delivery"] == {
        "status": "degraded",
        "workers": workers,
        "pumps": pumps,
        "warnings": warnings,
    }


def test_a_stopped_worker_and_pump_count_no_more(client: FlaskClient, clean_redis: redis.Redis) -> None:
    worker = _worker_registered(clean_redis)
    pump = PumpHeartbeat(clean_redis, ttl_s=30)
    pump.beat(passed=True)

    worker.register_death()
    pump.stop()

    body = client.get("/readyz").json
    assert body is not None and (body["delivery"]["workers"], body["delivery"]["pumps"]) == (0, 0)


@pytest.mark.parametrize("path", READINESS)
def test_readiness_is_503_naming_redis_when_it_is_down(tmp_path: Path, sqlite_url: str, path: str) -> None:
    response = dead_redis_app(tmp_path, sqlite_url).test_client().get(path)

    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error"] == "unreachable: redis"
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["redis"].startswith("down: ")
    assert response.json["delivery"] == {"status": "unknown", "workers": None, "pumps": None}


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
@pytest.mark.parametrize("path", READINESS)
def test_readiness_is_503_naming_the_database_when_it_is_down(
    tmp_path: Path, redis_url: str, path: str, kind: str
) -> None:
    response = dead_database_app(tmp_path, redis_url, kind).test_client().get(path)

    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error"] == "unreachable: database"
    assert response.json["checks"]["redis"] == "ok"
    assert response.json["delivery"]["status"] == "degraded"  # still read: it needs only Redis
    assert response.json["checks"]["database"].startswith("down: ")


def test_liveness_is_200_when_the_database_and_redis_answer(client: FlaskClient) -> None:
    response = client.get("/livez")

    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_liveness_is_200_with_redis_and_the_database_down(tmp_path: Path) -> None:
    nowhere = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=1"
    app = create_app(app_settings(tmp_path, nowhere, f"redis://127.0.0.1:{free_port()}/0"))

    live = app.test_client().get("/livez")
    ready = app.test_client().get("/readyz")

    assert live.status_code == 200
    assert live.json == {"status": "ok"}
    assert ready.status_code == 503
    assert ready.json is not None
    assert ready.json["error"] == "unreachable: database, redis"


def test_unknown_api_routes_answer_json_errors(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.json is not None
    assert set(response.json) == {"error", "fields"}


def test_unknown_pages_answer_an_html_error_page(client: FlaskClient) -> None:
    response = client.get("/nothing-here")

    assert response.status_code == 404
    assert b"<h1>404 Not Found</h1>" in response.data
