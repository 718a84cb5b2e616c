from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from dispatcher.redis_server import free_port
from tests.conftest import app_settings

READINESS = ["/readyz", "/healthz"]  # /healthz is readiness, kept for existing probes


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
def test_readiness_is_200_when_database_and_redis_answer(client: FlaskClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.parametrize("path", READINESS)
def test_readiness_is_503_naming_redis_when_it_is_down(tmp_path: Path, sqlite_url: str, path: str) -> None:
    response = dead_redis_app(tmp_path, sqlite_url).test_client().get(path)

    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error"] == "unreachable: redis"
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["redis"].startswith("down: ")


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
