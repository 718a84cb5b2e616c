"""Headers and hosts that could never be sent are refused where they are typed (form, API, preview), and what
is saved is sent as saving read it; the send test answers every stored postback, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from dispatcher.db import get_db
from dispatcher.models import Base, Postback
from dispatcher.postback_rules import HEADER_NAME_RULE
from tests.conftest import app_settings
from tests.dispatcher.egress.readme_signature import readme_verifier
from tests.portal.conftest import Account, Receiver, csrf_token, make_publisher

URL = "https://tracker.example/pb?cid=#fobs#"
EURO = (
    "the value of X-Euro holds '€' (U+20AC), which an HTTP header cannot carry: header values are Latin-1"
    " text (ASCII and accented Latin letters, no control characters), got '€uro'"
)


def stored_postback(app: Flask, owner: Account, url: str, **fields: Any) -> int:
    """A postback as stored before today's rules, or by anything but the portal and the API."""
    with get_db(app).session() as session:
        row = Postback(publisher_id=owner.id, url_template=url, **fields)
        session.add(row)
        session.flush()
        return row.id


def findings(answer: dict[str, Any], field: str) -> set[tuple[str, str]]:
    return {(f["severity"], f["code"]) for f in answer["findings"] if f["field"] == field}


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"X-Euro": "€uro"}, EURO),
        (
            {"X-Sub": "#fobs#:日本語"},
            "the value of X-Sub holds '日' (U+65E5), which an HTTP header cannot carry",
        ),
        ({"X-Ü": "1"}, f"{HEADER_NAME_RULE}, got 'X-Ü'"),
    ],
)
def test_the_api_refuses_a_header_it_could_never_send_naming_it(
    client: FlaskClient, publisher: Account, headers: dict[str, str], problem: str
) -> None:
    created = client.post("/api/v1/postbacks", json={"url": URL, "headers": headers}, headers=publisher.auth)
    saved = client.post("/api/v1/postbacks", json={"url": URL}, headers=publisher.auth).get_json()
    changed = client.put(
        f"/api/v1/postbacks/{saved['id']}", json={"headers": headers}, headers=publisher.auth
    )

    for response in (created, changed):
        assert response.status_code == 400
        assert response.get_json()["fields"]["headers"].startswith(problem)


def test_the_form_refuses_it_with_the_same_words(portal: FlaskClient, token: str) -> None:
    data = {"csrf_token": token, "url": URL, "method": "GET", "scope": "all", "events": ["sale"]}
    data |= {"statuses": ["pending"], "header_name": ["X-Euro"], "header_value": ["€uro"]}

    response = portal.post("/portal/postbacks", data=data)

    assert response.status_code == 400
    assert EURO.replace("'", "&#39;") in response.get_data(as_text=True)


def test_the_preview_says_so_in_the_api_and_in_the_form(
    portal: FlaskClient, publisher: Account, token: str
) -> None:
    api = portal.post(
        "/api/v1/postbacks/preview", json={"url": URL, "headers": {"X-Euro": "€uro"}}, headers=publisher.auth
    )
    live = portal.post(
        "/portal/postbacks/preview",
        data={"url": URL, "header_name": ["X-Euro", "X Bad"], "header_value": ["€uro", "1"]},
        headers={"X-CSRFToken": token},
    ).get_json()

    assert api.status_code == 200
    assert api.get_json()["ok"] is False
    assert findings(api.get_json(), "headers") == {("error", "unsendable_header")}
    assert EURO in {f["message"] for f in api.get_json()["findings"]}
    assert live["ok"] is False
    assert findings(live, "headers") == {("error", "unsendable_header"), ("error", "bad_header_name")}


@pytest.fixture
def strict_app(tmp_path: Path, sqlite_url: str, redis_url: str) -> Iterator[Flask]:
    """An app as in production: no private range allowed."""
    app = create_app(app_settings(tmp_path, sqlite_url, redis_url, POSTBACK_ALLOWED_NETWORKS=""))
    Base.metadata.create_all(get_db(app).engine)
    yield app
    get_db(app).dispose()


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("ｌｏｃａｌｈｏｓｔ", "ｌｏｃａｌｈｏｓｔ (localhost) is a loopback address"),
        ("127。0。0。1", "127。0。0。1 (127.0.0.1) is a loopback address"),
        ("１０．０．０．５", "１０．０．０．５ (10.0.0.5) is a private address"),
        ("localhost", "localhost is a loopback address"),
    ],
)
def test_a_private_address_is_refused_at_save_in_any_spelling_as_it_is_plainly(
    strict_app: Flask, clean_redis: redis.Redis, host: str, shown: str
) -> None:
    owner = make_publisher(strict_app)
    client = strict_app.test_client()
    url = f"http://{host}:8080/pb?cid=#fobs#"

    saved = client.post("/api/v1/postbacks", json={"url": url}, headers=owner.auth)
    preview = client.post("/api/v1/postbacks/preview", json={"url": url}, headers=owner.auth).get_json()

    assert saved.status_code == 400
    assert saved.get_json()["fields"]["url"] == f"{shown}; postbacks only go to public addresses"
    assert preview["ok"] is False and findings(preview, "url") >= {("error", "private_address")}


def test_a_host_that_cannot_be_read_is_refused_at_save_and_in_the_preview(
    client: FlaskClient, publisher: Account
) -> None:
    url = "https://tracker..example/pb?cid=#fobs#"

    saved = client.post("/api/v1/postbacks", json={"url": url}, headers=publisher.auth)
    preview = client.post("/api/v1/postbacks/preview", json={"url": url}, headers=publisher.auth).get_json()

    assert saved.status_code == 400
    assert saved.get_json()["fields"]["url"].startswith("tracker..example is not a valid host name")
    assert preview["ok"] is False and findings(preview, "url") == {("error", "bad_host")}


def test_what_is_saved_is_sent_to_the_host_saving_read(
    client: FlaskClient, publisher: Account, receiver: Receiver
) -> None:
    """Saved before, never sent (the client parsed it differently): now it reaches what saving checked."""
    port = receiver.url.rsplit(":", 1)[1]
    url = f"http://１２７。０。０。１:{port}/pb?cid=#fobs#"  # the test app allows 127.0.0.0/8
    preview = client.post("/api/v1/postbacks/preview", json={"url": url}, headers=publisher.auth).get_json()
    created = client.post("/api/v1/postbacks", json={"url": url}, headers=publisher.auth)

    answer = client.post(
        f"/api/v1/postbacks/{created.get_json()['id']}/test", headers=publisher.auth
    ).get_json()

    assert preview["url"] == f"http://127.0.0.1:{port}/pb?cid=cl1ck-4f2a"
    assert created.status_code == 201
    assert (answer["ok"], answer["request"]["url"]) == (True, preview["url"])
    [call] = receiver.received
    assert call.headers["Host"] == f"127.0.0.1:{port}"


def test_the_send_test_encodes_a_stored_value_a_header_cannot_carry(
    app: Flask, client: FlaskClient, publisher: Account, receiver: Receiver
) -> None:
    postback_id = stored_postback(app, publisher, receiver.url + "/pb", headers={"X-Euro": "€uro"})

    response = client.post(f"/api/v1/postbacks/{postback_id}/test", headers=publisher.auth)

    assert response.status_code == 200 and response.get_json()["ok"] is True
    [call] = receiver.received
    assert call.headers["X-Euro"] == "%E2%82%ACuro" and unquote(call.headers["X-Euro"]) == "€uro"


@pytest.mark.parametrize(
    ("url", "headers", "problem"),
    [
        ("/pb", {"X-Ü": "1"}, "the header name 'X-Ü' is not an HTTP token"),
        ("/pb", {"X Bad": "1"}, "the header name 'X Bad' is not an HTTP token"),
        ("", {}, "a..b is not a valid host name"),
    ],
)
def test_the_send_test_of_a_postback_that_cannot_be_sent_is_a_template_failure_not_a_500(
    app: Flask,
    portal: FlaskClient,
    publisher: Account,
    receiver: Receiver,
    url: str,
    headers: dict[str, str],
    problem: str,
) -> None:
    target = receiver.url + url if url else "http://a..b/pb"
    postback_id = stored_postback(app, publisher, target, headers=headers)

    api = portal.post(f"/api/v1/postbacks/{postback_id}/test", headers=publisher.auth)
    page = portal.post(
        f"/portal/postbacks/{postback_id}/test", data={"csrf_token": csrf_token(portal, "/portal/postbacks")}
    )

    assert api.status_code == 200 and page.status_code == 200
    assert (api.get_json()["ok"], api.get_json()["error_class"]) == (False, "template")
    assert problem in api.get_json()["error"]
    assert problem.replace("'", "&#39;") in page.get_data(as_text=True)
    assert receiver.received == []


def test_the_send_test_of_a_signed_get_verifies_from_what_the_receiver_got(
    client: FlaskClient, publisher: Account, receiver: Receiver
) -> None:
    created = client.post(
        "/api/v1/postbacks",
        json={"url": receiver.url + "/pb?cid=#fobs#&amount=#sa#", "signing_secret": True},
        headers=publisher.auth,
    ).get_json()
    secret = client.get(f"/api/v1/postbacks/{created['id']}", headers=publisher.auth).get_json()[
        "signing_secret"
    ]

    assert client.post(f"/api/v1/postbacks/{created['id']}/test", headers=publisher.auth).get_json()["ok"]
    [call] = receiver.received
    url = "http://" + call.headers["Host"] + call.path
    assert readme_verifier()(
        secret,
        call.headers["webhook-id"],
        call.headers["webhook-timestamp"],
        call.headers["webhook-signature"],
        call.method,
        url,
        call.body,
    )
