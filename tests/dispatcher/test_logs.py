"""Structured logs: LOG_FORMAT=json lines parse and carry the ids known where they are written; a request id
from or given in X-Request-ID; an access line per request, never with its query string."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from dispatcher import config, logs
from dispatcher.db import get_db
from tests.conftest import app_settings
from tests.dispatcher.ledger.conftest import Network, build_network
from tests.workers.conftest import run_command, worker_env

Lines = Callable[[], list[dict[str, Any]]]
NEW_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def app(tmp_path: Path, sqlite_url: str, redis_url: str) -> Iterator[Flask]:
    app = create_app(app_settings(tmp_path, sqlite_url, redis_url))
    yield app
    get_db(app).dispose()


@pytest.fixture
def network(app: Flask, client: FlaskClient) -> Network:
    with get_db(app).session() as session:
        ids = build_network(app, session)
    return Network(app=app, client=client, **ids)


@contextmanager
def captured(formatter: logging.Formatter) -> Iterator[Callable[[], str]]:
    """Every line logged in this process meanwhile, at INFO and above, through `formatter`."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream.getvalue
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    with captured(logs.JsonFormatter()) as text:
        yield lambda: [json.loads(line) for line in text().splitlines()]  # each line one JSON object


@pytest.fixture
def text_log() -> Iterator[Callable[[], str]]:
    with captured(logs.TextFormatter()) as text:
        yield text


def access_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "dispatcher.access"]


def test_a_json_line_has_time_level_logger_message_and_the_ids(json_lines: Lines) -> None:
    logs.set_process_field("worker", "host-1-abc123")
    try:
        with logs.scope(request_id="req-1"):
            logs.bind(sales_id="S-1")
            logging.getLogger("workers.engine").warning(
                "sending delivery %s failed", 7, extra={"delivery_id": 7, "attempt": 2}
            )
    finally:
        logs.set_process_field("worker", None)

    [line] = json_lines()
    assert line["level"] == "WARNING"
    assert line["logger"] == "workers.engine"
    assert line["message"] == "sending delivery 7 failed"
    assert (line["request_id"], line["sales_id"], line["delivery_id"], line["attempt"], line["worker"]) == (
        "req-1",
        "S-1",
        7,
        2,
        "host-1-abc123",
    )
    written = datetime.fromisoformat(line["time"])
    assert written.utcoffset() is not None and written.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs((datetime.now(UTC) - written).total_seconds()) < 60


def test_a_traceback_stays_inside_its_one_json_line(json_lines: Lines) -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logging.getLogger("dispatcher").exception("it failed")

    [line] = json_lines()
    assert line["message"] == "it failed"
    assert "ValueError: bad\nthing" in line["exception"]


def test_ids_outside_a_scope_are_left_out(json_lines: Lines) -> None:
    logs.bind(sales_id="nowhere")  # no scope: nothing to bind to
    logging.getLogger("dispatcher").warning("plain")

    [line] = json_lines()
    assert set(line) == {"time", "level", "logger", "message"}


def test_a_text_line_ends_with_its_ids(text_log: Callable[[], str]) -> None:
    with logs.scope(request_id="req-2"):
        logging.getLogger("dispatcher").warning("plain")

    assert text_log().rstrip("\n").endswith(" WARNING dispatcher plain request_id=req-2")


def test_a_request_gets_a_new_id_echoed_in_its_response_and_its_access_line(
    client: FlaskClient, json_lines: Lines
) -> None:
    response = client.get("/livez")

    request_id = response.headers["X-Request-ID"]
    assert NEW_ID.fullmatch(request_id)
    [line] = access_lines(json_lines())
    assert line["request_id"] == request_id
    assert (line["method"], line["path"], line["status"]) == ("GET", "/livez", 200)
    assert line["message"].startswith("GET /livez 200 ")
    assert line["duration_ms"] >= 0


def test_a_safe_incoming_request_id_is_kept(client: FlaskClient, json_lines: Lines) -> None:
    response = client.get("/livez", headers={"X-Request-ID": "lb-7f3a:01.2_x"})

    assert response.headers["X-Request-ID"] == "lb-7f3a:01.2_x"
    assert access_lines(json_lines())[0]["request_id"] == "lb-7f3a:01.2_x"


@pytest.mark.parametrize("given", ["x" * 65, "has space", 'quote"d', "new\\nline", "é", ""])
def test_an_unsafe_incoming_request_id_is_replaced(
    client: FlaskClient, json_lines: Lines, given: str
) -> None:
    response = client.get("/livez", headers={"X-Request-ID": given})

    assert NEW_ID.fullmatch(response.headers["X-Request-ID"])
    assert access_lines(json_lines())[0]["request_id"] == response.headers["X-Request-ID"]


def test_a_view_s_log_lines_carry_the_request_id(app: Flask, json_lines: Lines) -> None:
    def noisy() -> str:
        logging.getLogger("dispatcher.test").warning("inside the view")
        return "ok"

    app.add_url_rule("/noisy", "noisy", noisy)

    response = app.test_client().get("/noisy")

    lines = json_lines()
    [inside] = [line for line in lines if line["message"] == "inside the view"]
    assert inside["request_id"] == response.headers["X-Request-ID"]
    assert access_lines(lines)[0]["request_id"] == response.headers["X-Request-ID"]


def test_an_s2s_sale_s_access_line_has_its_sales_id_and_never_the_query_string(
    network: Network, json_lines: Lines
) -> None:
    click_id = network.click()
    token = network.s2s_token

    response = network.client.get(f"/s2s/transaction?token={token}&clickid={click_id}&on=ORD-9&sa=12.50")

    assert response.status_code == 201, response.json
    assert response.json is not None
    lines = json_lines()
    [click_line, sale_line] = access_lines(lines)
    assert (click_line["path"], click_line["status"]) == (f"/c/{network.program_id}", 302)  # the fast path
    assert (sale_line["method"], sale_line["path"], sale_line["status"]) == ("GET", "/s2s/transaction", 201)
    assert sale_line["sales_id"] == response.json["sales_id"]
    assert sale_line["request_id"] == response.headers["X-Request-ID"]
    everything = json.dumps(lines)
    assert "token" not in everything and token not in everything and "ORD-9" not in everything


def test_an_api_sale_s_access_line_has_its_sales_id(network: Network, json_lines: Lines) -> None:
    sale = network.sale()

    [_, sale_line] = access_lines(json_lines())
    assert (sale_line["method"], sale_line["path"], sale_line["status"]) == (
        "POST",
        "/api/v1/transactions",
        201,
    )
    assert sale_line["sales_id"] == sale["sales_id"]


def test_a_control_character_in_a_path_cannot_forge_a_text_line(
    client: FlaskClient, text_log: Callable[[], str]
) -> None:
    client.get("/nothing%0A2026-01-01 00:00:00 INFO forged")

    [line] = [line for line in text_log().splitlines() if "dispatcher.access" in line]
    assert "/nothing\\x0a2026-01-01 00:00:00 INFO forged 404" in line


@pytest.mark.processes
def test_a_worker_with_log_format_json_writes_json_lines_naming_itself(
    tmp_path: Path, sqlite_url: str, redis_url: str
) -> None:
    env = worker_env(sqlite_url, redis_url, tmp_path, LOG_FORMAT="json", LOG_LEVEL="info")

    done = run_command(env, "worker", "--burst")

    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line is one JSON object
    [started] = [line for line in lines if line["logger"] == "workers.worker"]
    assert started["message"].startswith(f"worker {started['worker']} started on queues ")
    assert started["level"] == "INFO"


@pytest.mark.parametrize(("setting", "level"), [({}, "INFO"), ({"ACCESS_LOG": "0"}, "WARNING")])
def test_the_access_log_is_on_unless_switched_off_whatever_the_log_level(
    tmp_path: Path, setting: dict[str, str], level: str
) -> None:
    settings = config.from_mapping(
        {"DISPATCHER_ENV": "development", "INSTANCE_PATH": str(tmp_path), **setting}
    )

    schema = logs.dict_config(settings)

    assert settings.log_level == "WARNING"
    assert schema["root"]["level"] == "WARNING"
    assert schema["loggers"]["dispatcher.access"]["level"] == level


def test_gunicorns_line_for_a_failed_request_never_carries_its_query_string() -> None:
    """gunicorn logs "Error handling request <uri>" when a request fails outside the app; S2S URLs carry the
    advertiser's token in their query string."""
    settings = config.from_mapping(
        {"DATABASE_URL": "sqlite://", "SECRET_KEY": "x" * 20, "DISPATCHER_ENV": "development"}
    )
    wired = logs.dict_config(settings)
    assert wired["handlers"]["stderr"]["filters"] == ["no_query_strings"]

    with captured(logs.TextFormatter()) as text:
        handler = logging.getLogger().handlers[-1]
        handler.addFilter(logs.NoQueryStrings())
        logging.getLogger("gunicorn.error").error(
            "Error handling request %s", "/s2s/transaction?token=s2s_SECRET"
        )

    assert "Error handling request /s2s/transaction?(query string left out)" in text()
    assert "s2s_SECRET" not in text()
