"""Cases the validator fuzzing found in the publisher side, kept as plain tests once fixed (each was a 500 or
a postback that could never be sent)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import macros
from dispatcher.postback_rules import Invalid, check
from tests.portal.conftest import Account, add_source, make_publisher
from tests.security.fuzz_support import assert_error_shape, row_counts, written

URL = "https://tracker.example/pb?cid=#fobs#"


@pytest.fixture
def me(app: Flask) -> Account:
    return make_publisher(app)


def _refused(app: Flask, client: FlaskClient, me: Account, body: dict[str, Any], field: str) -> None:
    before = row_counts(app)

    response = client.post("/api/v1/postbacks", json=body, headers=me.auth)

    assert response.status_code == 400, response.get_data(as_text=True)
    assert list(assert_error_shape(response)) == [field]
    assert written(before, row_counts(app)) == {}


@pytest.mark.parametrize("item", ["²", "١", "1" * 5000, 10**25, "-1", " 1 2"])
def test_a_traffic_source_id_that_is_not_plain_digits_is_a_400_not_a_500(
    app: Flask, client: FlaskClient, me: Account, item: object
) -> None:
    add_source(app, me, "Blog")

    _refused(app, client, me, {"url": URL, "traffic_source_ids": [item]}, "traffic_source_ids")
    with pytest.raises(Invalid) as refused:
        check({"url": URL, "traffic_source_ids": [item]}, own_source_ids={1})
    assert list(refused.value.problems) == ["traffic_source_ids"]


SURROGATE = "a\ud800b"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("url", URL + SURROGATE),
        ("name", SURROGATE),
        ("method", SURROGATE),
        ("body_template", "cid=#fobs#" + SURROGATE),
        ("content_type", SURROGATE),
        ("headers", {"X-Token": SURROGATE}),
        ("status_map", {"approved": SURROGATE}),
        ("success_body_contains", SURROGATE),
    ],
)
def test_a_lone_surrogate_in_any_text_is_a_400_not_a_database_error(
    app: Flask, client: FlaskClient, me: Account, field: str, value: object
) -> None:
    body = {"url": URL, "method": "POST", "body_template": "cid=#fobs#", field: value}

    _refused(app, client, me, body, field)
    created = client.post("/api/v1/postbacks", json={"url": URL}, headers=me.auth).get_json()
    response = client.put(f"/api/v1/postbacks/{created['id']}", json={field: value}, headers=me.auth)
    assert response.status_code == 400 and field in response.get_json()["fields"]


@pytest.mark.parametrize("port", ["0", "99999", "65536", "-1", "8o"])
def test_a_url_with_an_impossible_port_is_refused_when_saved(
    app: Flask, client: FlaskClient, me: Account, port: str
) -> None:
    _refused(app, client, me, {"url": f"https://tracker.example:{port}/pb?cid=#fobs#"}, "url")


def test_a_url_with_a_real_port_is_saved(client: FlaskClient, me: Account) -> None:
    response = client.post(
        "/api/v1/postbacks", json={"url": "https://t.example:8443/?c=#fobs#"}, headers=me.auth
    )

    assert response.status_code == 201 and response.get_json()["url"] == "https://t.example:8443/?c=#fobs#"


@pytest.mark.parametrize("context", list(macros.Context))
def test_a_strftime_pattern_with_a_lone_surrogate_is_a_lint_error_not_a_crash(
    context: macros.Context,
) -> None:
    template = (
        '{"t": "#et:%Y\ud800#"}' if context is macros.Context.JSON else "https://t.example/?t=#et:%Y\ud800#"
    )

    codes = [finding.code for finding in macros.lint(template, context) if finding.severity == "error"]

    assert "unknown_modifier" in codes
    with pytest.raises(macros.MacroError):
        macros.parse(template, context).expand(macros.sample_values())


def test_the_preview_of_such_a_pattern_shows_the_error(client: FlaskClient, me: Account) -> None:
    body = {"url": "https://t.example/?c=#fobs#&t=#et:%Y\ud800#"}

    response = client.post("/api/v1/postbacks/preview", json=body, headers=me.auth)

    assert response.status_code == 200 and response.get_json()["ok"] is False


@pytest.mark.parametrize("word", [True, 1.5, [1], {"a": "b"}, SURROGATE])
def test_a_preview_with_a_status_word_that_is_not_text_is_a_400(
    app: Flask, client: FlaskClient, me: Account, word: object
) -> None:
    body = {"url": "https://t.example/?c=#fobs#&s=#status#", "status_map": {"approved": word}}
    before = row_counts(app)

    response = client.post("/api/v1/postbacks/preview", json=body, headers=me.auth)

    assert response.status_code == 400, response.get_data(as_text=True)
    assert list(assert_error_shape(response)) == ["status_map"]
    assert written(before, row_counts(app)) == {}


def test_a_preview_expands_a_text_status_word(client: FlaskClient, me: Account) -> None:
    body = {"url": "https://t.example/?c=#fobs#&s=#status#", "status_map": {"approved": "sale"}}

    response = client.post("/api/v1/postbacks/preview", json=body, headers=me.auth)

    assert response.status_code == 200 and response.get_json()["url"].endswith("&s=sale")


@pytest.mark.parametrize(
    ("template", "context"),
    [
        ("https://t.example/?a=\x00&c=#fobs#", macros.Context.URL),
        ('{"a": "\x00", "b": #sa#}', macros.Context.JSON),
    ],
)
def test_a_nul_in_a_template_is_linted_and_expanded_not_a_crash(
    template: str, context: macros.Context
) -> None:
    macros.lint(template, context)

    assert "\x00" in macros.parse(template, context).expand(macros.sample_values())


def test_the_preview_of_a_template_with_a_nul_answers(client: FlaskClient, me: Account) -> None:
    body = {
        "url": "https://t.example/?a=\x00&c=#fobs#",
        "method": "POST",
        "body_template": '{"a": "\x00", "b": #sa#}',
    }

    response = client.post("/api/v1/postbacks/preview", json=body, headers=me.auth)

    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"a": ' + "1" * 5000 + ', "b": #sa#}', "too many digits"),
        ("[" * 4000 + "#sa#" + "]" * 4000, "nested"),
    ],
)
def test_a_json_body_python_cannot_parse_is_a_lint_error_not_a_500(
    app: Flask, client: FlaskClient, me: Account, body: str, reason: str
) -> None:
    [finding] = [f for f in macros.lint(body, macros.Context.JSON) if f.severity == "error"]
    assert finding.code == "invalid_json" and reason in finding.message

    _refused(app, client, me, {"url": URL, "method": "POST", "body_template": body}, "body_template")
