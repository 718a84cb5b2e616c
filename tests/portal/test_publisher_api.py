"""The publisher API: postbacks CRUD, preview and test, deliveries and replay; 401 without a token, 404 for
another publisher's ids, the portal's validation messages."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dispatcher.db import get_db
from dispatcher.models import Delivery, Postback
from tests.dispatcher import factories
from tests.portal.conftest import Account, Receiver, add_source

URL = "https://tracker.example/pb?cid=#fobs#&payout=#ca#&status=#status#"


def post(client: FlaskClient, owner: Account, path: str, body: object) -> Any:
    return client.post(path, json=body, headers=owner.auth)


def test_a_postback_is_created_read_changed_and_deleted(
    app: Flask, client: FlaskClient, publisher: Account
) -> None:
    source = add_source(app, publisher, "Blog")

    created = post(
        client,
        publisher,
        "/api/v1/postbacks",
        {
            "url": URL,
            "method": "GET",
            "traffic_source_ids": [source],
            "events": ["sale", "approved"],
            "statuses": ["approved"],
            "status_map": {"approved": "sale"},
            "headers": {"X-Key": "k"},
            "success_body_contains": "OK",
            "signing_secret": True,
        },
    )
    body = created.get_json()
    postback_id = body["id"]
    read = client.get(f"/api/v1/postbacks/{postback_id}", headers=publisher.auth).get_json()
    changed = client.put(
        f"/api/v1/postbacks/{postback_id}", json={"active": False, "events": ["lead"]}, headers=publisher.auth
    ).get_json()
    listed = client.get("/api/v1/postbacks", headers=publisher.auth).get_json()
    deleted = client.delete(f"/api/v1/postbacks/{postback_id}", headers=publisher.auth)

    assert created.status_code == 201
    assert {
        key: body[key]
        for key in (
            "url",
            "method",
            "traffic_source_ids",
            "events",
            "statuses",
            "status_map",
            "headers",
            "success_body_contains",
            "active",
            "status",
        )
    } == {
        "url": URL,
        "method": "GET",
        "traffic_source_ids": [source],
        "events": ["sale", "approved"],
        "statuses": ["approved"],
        "status_map": {"approved": "sale"},
        "headers": {"X-Key": "k"},
        "success_body_contains": "OK",
        "active": True,
        "status": "active",
    }
    assert body["signing_secret"].startswith("whsec_") and read == body
    assert changed["events"] == ["lead"] and changed["url"] == URL  # untouched fields keep their values
    assert (changed["active"], changed["status"], changed["paused_reason"]) == (
        False,
        "paused",
        "Paused by the publisher",
    )
    assert [item["id"] for item in listed["postbacks"]] == [postback_id]
    assert deleted.status_code == 204
    assert client.get(f"/api/v1/postbacks/{postback_id}", headers=publisher.auth).status_code == 404
    assert client.get("/api/v1/postbacks", headers=publisher.auth).get_json() == {"postbacks": []}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"url": "is required: paste your tracker's postback URL"}),
        ({"url": URL, "method": "PATCH"}, {"method": "must be GET or POST, got 'PATCH'"}),
        ({"url": "https://t.example/?c=OPTIONAL"}, None),
        ({"url": URL, "colour": "red"}, {"colour": "is not a postback field"}),
        (
            {"url": URL, "signing_secret": "abc"},
            {"signing_secret": "must be true (make a new secret) or false (remove it), got 'abc'"},
        ),
        (
            {"url": URL, "traffic_source_ids": [999]},
            {"traffic_source_ids": "999 is not one of your traffic sources"},
        ),
        ({"url": 5}, {"url": "must be text, got 5"}),
    ],
)
def test_bad_postbacks_are_refused_naming_the_field(
    client: FlaskClient, publisher: Account, body: dict[str, object], fields: dict[str, str] | None
) -> None:
    response = post(client, publisher, "/api/v1/postbacks", body)

    answer = response.get_json()
    assert response.status_code == 400
    if fields is not None:
        assert answer["fields"] == fields
        assert answer["error"] == "; ".join(f"{name}: {problem}" for name, problem in fields.items())
    else:
        assert "OPTIONAL is your tracker's placeholder" in answer["fields"]["url"]


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]"])
def test_a_body_that_is_not_a_json_object_is_a_400(
    client: FlaskClient, publisher: Account, raw: bytes
) -> None:
    response = client.post(
        "/api/v1/postbacks", data=raw, headers={**publisher.auth, "Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.get_json() == {  # the body is named, as any refused field is
        "error": "body: must be a JSON object, sent with Content-Type: application/json",
        "fields": {"body": "must be a JSON object, sent with Content-Type: application/json"},
    }


def test_another_publishers_traffic_source_cannot_be_used(
    app: Flask, client: FlaskClient, publisher: Account, other: Account
) -> None:
    theirs = add_source(app, other, "Theirs")

    response = post(client, publisher, "/api/v1/postbacks", {"url": URL, "traffic_source_ids": [theirs]})

    assert response.get_json()["fields"] == {
        "traffic_source_ids": f"{theirs} is not one of your traffic sources"
    }


ROUTES = [
    ("GET", "/api/v1/postbacks/{postback}"),
    ("PUT", "/api/v1/postbacks/{postback}"),
    ("DELETE", "/api/v1/postbacks/{postback}"),
    ("POST", "/api/v1/postbacks/{postback}/test"),
    ("GET", "/api/v1/deliveries/{delivery}"),
    ("POST", "/api/v1/deliveries/{delivery}/replay"),
]


def _theirs(app: Flask, owner: Account) -> dict[str, int]:
    with get_db(app).session() as session:
        them = session.get(factories.Publisher, owner.id)
        hook = factories.postback(session, them)
        sale = factories.transaction(session, them, factories.program(session))
        done = factories.delivery(session, hook, factories.event(session, sale), state="failed")
        return {"postback": hook.id, "delivery": done.id}


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_another_publishers_ids_are_not_found(
    app: Flask, client: FlaskClient, publisher: Account, other: Account, method: str, route: str
) -> None:
    ids = _theirs(app, other)

    response = client.open(route.format(**ids), method=method, json={"url": URL}, headers=publisher.auth)

    assert response.status_code == 404
    assert response.get_json()["error"].endswith("not found")
    with get_db(app).session() as session:
        assert session.get(Postback, ids["postback"]).deleted_at is None  # type: ignore[union-attr]
        assert session.get(Delivery, ids["delivery"]).state == "failed"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("GET", "/api/v1/postbacks"),
        ("POST", "/api/v1/postbacks"),
        ("POST", "/api/v1/postbacks/preview"),
        ("GET", "/api/v1/deliveries"),
        *ROUTES,
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer pub_000000000000_wrong", "Basic abc", "Bearer "])
def test_without_a_valid_token_the_api_answers_401(
    client: FlaskClient, publisher: Account, method: str, route: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    response = client.open(route.format(postback=1, delivery=1), method=method, json={}, headers=headers)

    assert response.status_code == 401
    assert (
        response.get_json()["error"] == "Authorization: Bearer <publisher API token> is missing or not valid"
    )
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_tampered_secret_with_a_real_key_id_is_refused(client: FlaskClient, publisher: Account) -> None:
    forged = publisher.token[:-4] + "AAAA"

    response = client.get("/api/v1/postbacks", headers={"Authorization": f"Bearer {forged}"})

    assert response.status_code == 401


def test_the_api_needs_no_csrf_token(client: FlaskClient, publisher: Account) -> None:
    assert post(client, publisher, "/api/v1/postbacks", {"url": URL}).status_code == 201


def test_preview_expands_and_lints_without_saving(client: FlaskClient, publisher: Account) -> None:
    response = post(
        client,
        publisher,
        "/api/v1/postbacks/preview",
        {
            "url": "http://t.example/pb?cid=#fobs#",
            "method": "POST",
            "body_template": '{"payout": #ca#}',
        },
    )

    assert response.get_json() == {
        "method": "POST",
        "url": "http://t.example/pb?cid=cl1ck-4f2a",
        "body": '{"payout": 12.50}',
        "content_type": "application/json",
        "ok": True,
        "findings": [
            {
                "field": "url",
                "severity": "warning",
                "code": "insecure_http",
                "start": 0,
                "end": 4,
                "message": "http:// sends the postback unencrypted;"
                " use https:// if your tracker supports it.",
            }
        ],
        "url_marked": None,  # nothing to mark: no errors
        "body_marked": None,
    }
    assert client.get("/api/v1/postbacks", headers=publisher.auth).get_json() == {"postbacks": []}


def test_send_test_calls_the_receiver_with_sample_values_and_reports_its_answer(
    client: FlaskClient, publisher: Account, receiver: Receiver
) -> None:
    created = post(
        client,
        publisher,
        "/api/v1/postbacks",
        {
            "url": receiver.url + "/pb?cid=#fobs#&st=#status#",
            "status_map": {"approved": "sale"},
            "signing_secret": True,
        },
    ).get_json()

    answer = post(client, publisher, f"/api/v1/postbacks/{created['id']}/test", {}).get_json()

    assert answer["ok"] is True and answer["status_code"] == 200
    assert answer["response_excerpt"] == "OK received" and answer["resolved_ip"] == "127.0.0.1"
    assert answer["duration_ms"] >= 0
    (call,) = receiver.received
    assert call.path == "/pb?cid=cl1ck-4f2a&st=sale"
    assert call.headers["webhook-signature"].startswith("v1,")


def test_send_test_reports_a_refused_answer(
    client: FlaskClient, publisher: Account, receiver: Receiver
) -> None:
    receiver.status, receiver.body = 403, b"<b>denied</b>"
    created = post(
        client, publisher, "/api/v1/postbacks", {"url": receiver.url + "/pb?cid=#fobs#"}
    ).get_json()

    answer = post(client, publisher, f"/api/v1/postbacks/{created['id']}/test", {}).get_json()

    assert (answer["ok"], answer["status_code"], answer["error_class"]) == (False, 403, "http_status")
    assert answer["error"] == "403 Forbidden"


def test_send_test_never_follows_a_redirect(
    client: FlaskClient, publisher: Account, receiver: Receiver
) -> None:
    receiver.status = 302
    created = post(
        client, publisher, "/api/v1/postbacks", {"url": receiver.url + "/pb?cid=#fobs#"}
    ).get_json()

    answer = post(client, publisher, f"/api/v1/postbacks/{created['id']}/test", {}).get_json()

    assert (answer["ok"], answer["error_class"]) == (False, "redirect")
    assert answer["error"].startswith("302 Found: redirects are not followed")
    assert len(receiver.received) == 1
