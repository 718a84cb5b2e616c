"""Staff tokens on the publisher API's delivery routes: every publisher visible, console filters, audited
replays; publishers' tokens keep seeing only their own."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from dispatcher.db import get_db
from dispatcher.models import AuditEntry, StaffUser
from dispatcher.staff_auth import issue_token
from tests.portal.conftest import make_publisher
from tests.support.conftest import Network, Staff, make_staff


def _token(app: Flask, staff: Staff) -> dict[str, str]:
    with get_db(app).session() as session:
        row = session.get(StaffUser, staff.id)
        assert row is not None
        return {"Authorization": f"Bearer {issue_token(row)}"}


@pytest.fixture
def staff_auth(app: Flask, support_staff: Staff) -> dict[str, str]:
    return _token(app, support_staff)


def test_staff_list_every_publishers_deliveries_with_console_filters(
    client: FlaskClient, network: Network, staff_auth: dict[str, str]
) -> None:
    everything = client.get("/api/v1/deliveries", headers=staff_auth).get_json()
    by_sale = client.get("/api/v1/deliveries?sales_id=SALE-C", headers=staff_auth).get_json()
    by_program = client.get(
        f"/api/v1/deliveries?program_id={network.programs['hats']}&state=pending", headers=staff_auth
    ).get_json()

    assert {row["publisher_id"] for row in everything["deliveries"]} == set(network.publishers.values())
    assert [row["id"] for row in everything["deliveries"]] == [network.ids[k] for k in "edcba"]
    assert [row["order_number"] for row in by_sale["deliveries"]] == ["ORD-C"]
    assert [row["sales_id"] for row in by_program["deliveries"]] == ["SALE-D"]
    assert by_sale["next_before"] is None
    # A row's request is its (last) attempt's; the pending one was never attempted.
    urls = {row["order_number"]: row["url"] for row in everything["deliveries"]}
    assert urls == {
        "ORD-A": "http://a.example/pb?order=ORD-A",
        "ORD-B": "http://a.example/pb?order=ORD-B",
        "ORD-C": "http://b.example/pb?order=ORD-C",
        "ORD-D": None,
        "ORD-E": "http://c.example:8443/pb?order=ORD-E",
    }


def test_staff_page_through_the_api_with_next_before(
    app: Flask, client: FlaskClient, network: Network, staff_auth: dict[str, str]
) -> None:
    from tests.support.test_search import _many

    _many(app, 55)
    first = client.get("/api/v1/deliveries", headers=staff_auth).get_json()
    second = client.get(f"/api/v1/deliveries?before={first['next_before']}", headers=staff_auth).get_json()

    assert (len(first["deliveries"]), len(second["deliveries"])) == (50, 10)
    assert second["next_before"] is None


def test_staff_read_any_delivery_with_its_attempts(
    client: FlaskClient, network: Network, staff_auth: dict[str, str]
) -> None:
    body = client.get(f"/api/v1/deliveries/{network.ids['a']}", headers=staff_auth).get_json()

    assert (body["sales_id"], body["publisher_id"]) == ("SALE-A", network.publishers["p1"])
    assert body["click_id"] == "CLICK-A"  # as the list gives it
    [attempt] = body["attempts"]
    assert (attempt["status_code"], attempt["resolved_ip"]) == (404, "203.0.113.7")
    assert attempt["request_headers"] == {"User-Agent": "PostbackDispatcher/1"}
    assert (body["method"], body["url"]) == ("GET", "http://a.example/pb?order=ORD-A")


def test_a_staff_replay_through_the_api_is_audited_and_a_pending_one_is_409(
    app: Flask, client: FlaskClient, network: Network, support_staff: Staff, staff_auth: dict[str, str]
) -> None:
    done = client.post(f"/api/v1/deliveries/{network.ids['a']}/replay", headers=staff_auth)
    pending = client.post(f"/api/v1/deliveries/{network.ids['d']}/replay", headers=staff_auth)
    missing = client.post("/api/v1/deliveries/999999/replay", headers=staff_auth)

    assert (done.status_code, done.get_json()["delivery"]["state"]) == (200, "pending")
    assert pending.status_code == 409 and "still pending" in pending.get_json()["error"]
    assert missing.status_code == 404
    with get_db(app).session() as session:
        entries = list(session.scalars(select(AuditEntry)))
        assert [(e.staff_user_id, e.action, e.target_id) for e in entries] == [
            (support_staff.id, "replay", str(network.ids["a"]))
        ]


def test_a_publisher_token_still_sees_only_its_own(app: Flask, client: FlaskClient, network: Network) -> None:
    outsider = make_publisher(app)

    listed = client.get("/api/v1/deliveries", headers=outsider.auth).get_json()
    other = client.get(f"/api/v1/deliveries/{network.ids['a']}", headers=outsider.auth)

    assert listed["deliveries"] == [] and other.status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer stf_0123456789ab_not-the-secret",
        "Bearer stf_nothex_secret",
        "Bearer stf_",
        "Bearer pub_0123456789ab_secret",
        "",
    ],
)
def test_a_bad_or_revoked_staff_token_is_401(
    client: FlaskClient, network: Network, authorization: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    for method, path in (
        ("get", "/api/v1/deliveries"),
        ("get", f"/api/v1/deliveries/{network.ids['a']}"),
        ("post", f"/api/v1/deliveries/{network.ids['a']}/replay"),
    ):
        assert getattr(client, method)(path, headers=headers).status_code == 401


def test_an_inactive_staff_users_token_is_refused(app: Flask, client: FlaskClient) -> None:
    leaver = make_staff(app)
    auth = _token(app, leaver)
    with get_db(app).session() as session:
        row = session.get(StaffUser, leaver.id)
        assert row is not None
        row.active = False

    assert client.get("/api/v1/deliveries", headers=auth).status_code == 401


def test_a_bad_filter_is_a_json_400_naming_it(client: FlaskClient, staff_auth: dict[str, str]) -> None:
    response = client.get("/api/v1/deliveries?error_class=gremlins", headers=staff_auth)

    assert response.status_code == 400
    assert response.get_json()["fields"] == {"error_class": response.get_json()["fields"]["error_class"]}


def test_a_filter_a_token_cannot_use_is_a_400_naming_it_never_ignored(
    app: Flask, client: FlaskClient, network: Network, staff_auth: dict[str, str]
) -> None:
    # A staff script's sales_id run with a publisher token answered every delivery of the publisher.
    publisher = make_publisher(app)
    for headers, query, named in (
        (publisher.auth, "sales_id=SALE-A", "sales_id"),
        (publisher.auth, "stauts=failed", "stauts"),
        (staff_auth, "stauts=failed", "stauts"),
    ):
        response = client.get(f"/api/v1/deliveries?{query}", headers=headers)
        assert response.status_code == 400, (query, response.get_json())
        assert list(response.get_json()["fields"]) == [named]
    # What each may filter by still works.
    assert client.get("/api/v1/deliveries?sales_id=SALE-A", headers=staff_auth).status_code == 200
    assert (
        client.get("/api/v1/deliveries?order_number=x&state=failed", headers=publisher.auth).status_code
        == 200
    )


def test_a_delivery_id_beyond_bigint_is_a_404(client: FlaskClient, staff_auth: dict[str, str]) -> None:
    huge = "/api/v1/deliveries/99999999999999999999"

    assert client.get(huge, headers=staff_auth).status_code == 404
    assert client.post(f"{huge}/replay", headers=staff_auth).status_code == 404
