from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from app import create_app
from dispatcher.redis_server import free_port
from tests.conftest import app_settings


def test_healthz_is_200_when_database_and_redis_answer(client: FlaskClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_healthz_is_503_naming_redis_when_it_is_down(tmp_path: Path, sqlite_url: str) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(app_settings(tmp_path, sqlite_url, dead_redis))

    response = app.test_client().get("/healthz")

    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error"] == "unreachable: redis"
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["redis"].startswith("down: ")


def test_healthz_is_503_naming_the_database_when_it_is_down(tmp_path: Path, redis_url: str) -> None:
    unreachable = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=1"
    app = create_app(app_settings(tmp_path, unreachable, redis_url))

    response = app.test_client().get("/healthz")

    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error"] == "unreachable: database"
    assert response.json["checks"]["redis"] == "ok"


def test_unknown_api_routes_answer_json_errors(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.json is not None
    assert set(response.json) == {"error", "fields"}


def test_unknown_pages_answer_an_html_error_page(client: FlaskClient) -> None:
    response = client.get("/nothing-here")

    assert response.status_code == 404
    assert b"<h1>404 Not Found</h1>" in response.data
