"""Secrets are never logged nor stored in the delivery log: passwords (right and wrong), API tokens (issued
in the portal and the console, used as bearer tokens), advertiser keys and S2S tokens (in the query string),
postback signing secrets (made in the portal and by the API) and used by a real worker to sign.

Every logger is captured at DEBUG in this process (root, werkzeug, gunicorn, rq) and a real worker's stdout
and stderr; the deliveries and attempts tables are read back whole. SQLAlchemy's own SQL echo is tested on its
own: SQLAlchemy keeps its loggers at WARNING whatever the root logger's level, and someone debugging SQL turns
the `sqlalchemy.engine` logger to INFO; statements are then logged without their parameters (the engine hides
them, dispatcher/db.py). At DEBUG that logger also logs the rows read, which nothing can hide (README,
Security).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from dispatcher import accounts
from dispatcher.db import get_db
from dispatcher.models import Attempt, Base, Delivery, Postback
from tests.conftest import app_settings
from tests.dispatcher.egress.readme_signature import readme_verifier
from tests.workers.conftest import Received, Receiver, run_command, worker_env

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
LOGGERS = [
    "",
    "werkzeug",
    "gunicorn",
    "gunicorn.access",
    "gunicorn.error",
    "rq",
    "rq.worker",
    "dispatcher",
    "workers",
]
SQL_ECHO = "sqlalchemy.engine"


@pytest.fixture
def app(tmp_path: Path, sqlite_url: str, redis_url: str) -> Iterator[Flask]:
    app = create_app(app_settings(tmp_path, sqlite_url, redis_url))
    Base.metadata.create_all(get_db(app).engine)
    yield app
    get_db(app).dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    # Not caplog.set_level: it would lower the capture handler's level to WARNING too.
    sql_echo = logging.getLogger(SQL_ECHO)
    previous = sql_echo.level
    sql_echo.setLevel(logging.WARNING)  # see test_sql_echo_does_not_log_signing_secrets
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    yield caplog
    sql_echo.setLevel(previous)


def csrf(client: FlaskClient, path: str) -> str:
    found = CSRF_FIELD.search(client.get(path).get_data(as_text=True))
    assert found, path
    return found.group(1)


def sign_in(client: FlaskClient, console: str, email: str, password: str) -> None:
    login = f"/{console}/login"
    wrong = {"email": email, "password": password[::-1], "csrf_token": csrf(client, login)}
    assert client.post(login, data=wrong).status_code == 401
    right = {"email": email, "password": password, "csrf_token": csrf(client, login)}
    assert client.post(login, data=right).status_code == 302


def new_token(client: FlaskClient, console: str, kind: str) -> str:
    page = client.post(f"/{console}/account/token", data={"csrf_token": csrf(client, f"/{console}/account")})
    found = re.search(rf"\b{kind}_[A-Za-z0-9_-]+", page.get_data(as_text=True))
    assert page.status_code == 200 and found, "the new token is shown once, in the page"
    return found.group(0)


def token_parts(token: str) -> list[str]:
    """The whole token and its secret part (the key id before it may be logged: it names, not opens).

    `kind_keyid_secret`: the secret is URL-safe base64 and may itself hold "_", so split from the left (a
    right split could keep a 2-character tail of it, which turns up in any text by chance)."""
    return [token, token.split("_", 2)[2]]


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for record in caplog.records:
        parts += [record.getMessage(), repr(record.args), record.exc_text or "", str(record.__dict__)]
    return "\n".join(parts)


def stored_text(app: Flask) -> str:
    with get_db(app).session() as session:
        rows = [*session.execute(select(Delivery.__table__)), *session.execute(select(Attempt.__table__))]
        return "\n".join(repr(tuple(row)) for row in rows)


def verify(secret: str, hit: Received) -> bool:
    """With the README's verification code: a GET signs its URL as the receiver got it."""
    url = "http://" + hit.headers["Host"] + hit.path
    signature = (
        hit.headers["webhook-id"],
        hit.headers["webhook-timestamp"],
        hit.headers["webhook-signature"],
    )
    return readme_verifier()(secret, *signature, hit.method, url, hit.body)


@pytest.mark.processes
def test_no_secret_reaches_any_log_or_the_delivery_log(
    app: Flask,
    debug_logs: pytest.LogCaptureFixture,
    clean_redis: redis.Redis,
    receiver: Receiver,
    redis_url: str,
    tmp_path: Path,
) -> None:
    publisher_password, staff_password = f"pub-{secrets.token_hex(8)}", f"stf-{secrets.token_hex(8)}"
    with get_db(app).session() as session:
        publisher = accounts.create_publisher(session, "Acme", "acme@secrets.test", publisher_password)
        accounts.create_staff(session, "help@secrets.test", staff_password)
        source = accounts.create_traffic_source(session, publisher.publisher.id, "Blog")
        advertiser = accounts.create_advertiser(session, "Shop")
        program = accounts.create_program(
            session, advertiser.advertiser.id, "Shoes", landing_url="https://shop.example/", commission="10%"
        )
        ids: dict[str, Any] = {
            "publisher": publisher.publisher.id,
            "source": source.id,
            "program": program.id,
        }

    # The portal: a login (and a wrong one), a new API token, a postback, a signing secret made in the form.
    portal = app.test_client()
    sign_in(portal, "portal", "acme@secrets.test", publisher_password)
    api_token = new_token(portal, "portal", "pub")
    form = {"url": receiver.url("/pb?cid=#fobs#&amount=#sa#"), "method": "GET", "scope": "all"}
    form |= {"events": ["sale"], "statuses": ["pending", "approved"]}
    created = portal.post(
        "/portal/postbacks", data={**form, "csrf_token": csrf(portal, "/portal/postbacks/new")}
    )
    postback_id = int(created.location.rsplit("/", 1)[-1])
    token = csrf(portal, f"/portal/postbacks/{postback_id}")
    portal.post(f"/portal/postbacks/{postback_id}/secret", data={"action": "generate", "csrf_token": token})
    with get_db(app).session() as session:
        form_secret = session.get(Postback, postback_id).signing_secret  # type: ignore[union-attr]
    assert form_secret

    # The API with the bearer token: a new signing secret, which the deliveries below are signed with.
    bearer = {"Authorization": f"Bearer {api_token}"}
    assert app.test_client().get("/api/v1/postbacks", headers=bearer).status_code == 200
    rotated = app.test_client().put(
        f"/api/v1/postbacks/{postback_id}", headers=bearer, json={"signing_secret": True}
    )
    signing_secret = rotated.get_json()["signing_secret"]
    assert signing_secret and signing_secret != form_secret

    # The console: a login, a staff token, a staff API call.
    console = app.test_client()
    sign_in(console, "support", "help@secrets.test", staff_password)
    staff_token = new_token(console, "support", "stf")
    staff_api = app.test_client().get(
        "/api/v1/deliveries", headers={"Authorization": f"Bearer {staff_token}"}
    )
    assert staff_api.status_code == 200

    # Sales: one by S2S with the token in the query string, one by the API with the advertiser key.
    clicks = [
        app.test_client().get(f"/c/{ids['program']}?pub={ids['publisher']}&ts={ids['source']}&fobs=sub{n}")
        for n in (1, 2)
    ]
    click_ids = [parse_qs(urlsplit(click.location).query)["clickid"][0] for click in clicks]
    s2s = app.test_client().get(
        f"/s2s/transaction?token={advertiser.s2s_token}&clickid={click_ids[0]}&on=ORD-1&sa=10.00"
    )
    api = app.test_client().post(
        "/api/v1/transactions",
        headers={"Authorization": f"Bearer {advertiser.api_key}"},
        json={"click_id": click_ids[1], "order_number": "ORD-2", "sale_amount": "20.00"},
    )
    assert (s2s.status_code, api.status_code) == (201, 201)
    assert s2s.get_json()["deliveries"] == api.get_json()["deliveries"] == 1

    # A real worker sends both, signed.
    worker = run_command(worker_env(get_db(app).url, redis_url, tmp_path), "worker", "--burst")

    assert worker.returncode == 0, worker.stderr
    received = receiver.hits("/pb")
    assert len(received) == 2
    assert all(verify(signing_secret, hit) for hit in received)  # signed with it
    secret_values = {
        "publisher password": [publisher_password, publisher_password[::-1]],
        "staff password": [staff_password, staff_password[::-1]],
        "publisher token (create-publisher)": token_parts(publisher.api_token),
        "publisher token (portal)": token_parts(api_token),
        "staff token": token_parts(staff_token),
        "advertiser API key": token_parts(advertiser.api_key),
        "S2S token": token_parts(advertiser.s2s_token),
        "signing secret (form)": [form_secret, form_secret.removeprefix("whsec_")],
        "signing secret (API)": [signing_secret, signing_secret.removeprefix("whsec_")],
    }
    places = {
        "logs of this process": logged_text(debug_logs),
        "worker stdout": worker.stdout,
        "worker stderr": worker.stderr,
        "deliveries and attempts": stored_text(app),
    }
    print(
        f"\nsecrets: {sum(len(v) for v in secret_values.values())} secret values checked in "
        f"{len(debug_logs.records)} log records, {len(worker.stdout) + len(worker.stderr)} characters of "
        f"worker output and {len(places['deliveries and attempts'])} characters of delivery rows"
    )
    assert len(debug_logs.records) > 0  # the capture works: there are records to look through
    leaks = [
        f"{name} in {place}"
        for name, values in secret_values.items()
        for place, text in places.items()
        if any(value in text for value in values)
    ]
    assert leaks == []


def test_sql_echo_does_not_log_signing_secrets(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger, as `logging.basicConfig(level=logging.DEBUG)` sets it
    caplog.set_level(logging.INFO, logger=SQL_ECHO)  # SQL echo, as `create_engine(..., echo=True)` turns on
    password = f"pub-{secrets.token_hex(8)}"
    with get_db(app).session() as session:
        accounts.create_publisher(session, "Acme", "acme@echo.test", password)
    portal = app.test_client()
    sign_in(portal, "portal", "acme@echo.test", password)
    form = {"url": "http://127.0.0.1:9/pb?cid=#fobs#", "method": "GET", "scope": "all", "events": ["sale"]}
    form |= {"statuses": ["pending"]}
    created = portal.post(
        "/portal/postbacks", data={**form, "csrf_token": csrf(portal, "/portal/postbacks/new")}
    )
    assert created.status_code == 302, created.status_code
    postback_id = int(created.location.rsplit("/", 1)[-1])
    token = csrf(portal, f"/portal/postbacks/{postback_id}")

    portal.post(f"/portal/postbacks/{postback_id}/secret", data={"action": "generate", "csrf_token": token})

    with get_db(app).session() as session:
        secret = session.get(Postback, postback_id).signing_secret  # type: ignore[union-attr]
    logged = logged_text(caplog)
    assert "UPDATE postbacks SET" in logged  # the statement that stored the secret was echoed...
    assert secret and password not in logged
    assert secret not in logged  # ...without its parameters
