"""Whatever JSON a script sends, the publisher API answers 2xx or a 4xx with the error shape, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.portal.conftest import Account

KEYS = [
    "url",
    "method",
    "traffic_source_ids",
    "events",
    "statuses",
    "body_template",
    "content_type",
    "headers",
    "status_map",
    "success_body_contains",
    "active",
    "name",
    "signing_secret",
    "other",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 10**12)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "GET",
            "POST",
            "https://t.example/pb?c=#fobs#",
            "http://10.0.0.1/",
            "sale",
            "approved",
            "application/json",
            '{"a": #ca#}',
            "#fobs:%Y#",
            "REPLACE",
            "Host",
        ]
    )
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=10) | st.sampled_from(["approved", "X-Key", "Host"]), inner, max_size=3
        )
    ),
    max_leaves=6,
)
BODIES = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES)
def test_any_json_gets_a_clean_answer(client: FlaskClient, publisher: Account, body: dict[str, Any]) -> None:
    created = client.post(
        "/api/v1/postbacks", json={"url": "https://t.example/?c=#fobs#"}, headers=publisher.auth
    )
    mine = f"/api/v1/postbacks/{created.get_json()['id']}"
    for method, path in (("POST", "/api/v1/postbacks"), ("POST", "/api/v1/postbacks/preview"), ("PUT", mine)):
        response = client.open(path, method=method, json=body, headers=publisher.auth)

        assert response.status_code in (200, 201, 400), (path, body, response.get_data(as_text=True))
        if response.status_code == 400:
            answer = response.get_json()
            assert isinstance(answer["error"], str) and isinstance(answer["fields"], dict)


@pytest.mark.parametrize(
    "field",
    ["url", "name", "body_template", "success_body_contains", "headers", "status_map", "content_type"],
)
def test_a_nul_character_is_refused_not_stored(client: FlaskClient, publisher: Account, field: str) -> None:
    value: object = (
        {"X-A": "a\x00"}
        if field == "headers"
        else {"approved": "a\x00"}
        if field == "status_map"
        else "a\x00"
    )
    body = {"url": "https://t.example/?c=#fobs#", "method": "POST", field: value}

    response = client.post("/api/v1/postbacks", json=body, headers=publisher.auth)

    assert response.status_code == 400 and field in response.get_json()["fields"]


@pytest.mark.parametrize("name", ["order_number", "sub_id", "state", "from", "postback_id"])
def test_a_nul_in_a_delivery_filter_is_a_400(client: FlaskClient, publisher: Account, name: str) -> None:
    response = client.get("/api/v1/deliveries", query_string={name: "a\x00"}, headers=publisher.auth)

    assert response.status_code == 400 and list(response.get_json()["fields"]) == [name]


def test_a_nul_in_the_login_email_is_just_a_wrong_login(client: FlaskClient, publisher: Account) -> None:
    from tests.portal.conftest import csrf_token

    data = {"email": "a\x00@x.test", "password": "whatever-long", "csrf_token": csrf_token(client)}

    assert client.post("/portal/login", data=data).status_code == 401


def test_a_token_with_a_nul_in_its_key_id_is_a_401(client: FlaskClient) -> None:
    response = client.get("/api/v1/postbacks", headers={"Authorization": "Bearer pub_00000000000\x00_secret"})

    assert response.status_code == 401
