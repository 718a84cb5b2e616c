"""`POST /api/v1/postbacks/preview` checks each field it is sent as saving does (a wrong type is a 400 naming
the field and the value, never taken as empty), while a draft may leave anything out and the templates'
problems stay findings of a 200."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.portal.conftest import Account

PREVIEW = "/api/v1/postbacks/preview"
URL = "https://tracker.example/pb?cid=#fobs#"
EVENTS = "sale, lead, approved, declined, reversed, adjusted"


def preview(client: FlaskClient, owner: Account, body: dict[str, Any]) -> Any:
    return client.post(PREVIEW, json=body, headers=owner.auth)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("method", 5, "must be text, got 5"),
        ("method", "PATCH", "must be GET or POST, got 'PATCH'"),
        ("url", 5, "must be text, got 5"),
        ("url", [URL], f"must be text, got [{URL!r}]"),
        ("url", "https://t.example/?c=" + "a" * 4100, "must be at most 4096 characters, got 4121"),
        ("body_template", {"a": 1}, "must be text, got {'a': 1}"),
        (
            "content_type",
            "text/plain",
            "must be one of application/json, application/x-www-form-urlencoded, got 'text/plain'",
        ),
        (
            "headers",
            "X-A: 1",
            """must be an object of header names and values, e.g. {"X-Token": "abc"}, got 'X-A: 1'""",
        ),
        ("headers", {"X-A": 1}, "must be text, got 1"),
        ("headers", {"Host": "evil.example"}, "Host is set from the URL and cannot be set"),
        ("events", "sale", "must be a list of events, got 'sale'"),
        ("events", [], f"choose at least one of {EVENTS}"),
        ("statuses", [1], "must each be one of pending, approved, declined, reversed, got 1"),
        ("status_map", {"approved": 1}, "must be text, got 1"),
        ("traffic_source_ids", "all", "must be a list of traffic source ids ([] for all), got 'all'"),
        ("traffic_source_ids", [987654], "987654 is not one of your traffic sources"),
        ("program_ids", [987654], "987654 is not a program of this network"),
        ("name", 5, "must be text, got 5"),
        ("success_body_contains", 1, "must be text, got 1"),
        ("active", "yes", "must be true or false, got 'yes'"),
    ],
)
def test_a_field_of_the_wrong_type_or_value_is_a_400_naming_it(
    client: FlaskClient, publisher: Account, field: str, value: object, problem: str
) -> None:
    response = preview(client, publisher, {"url": URL, field: value})

    assert response.status_code == 400
    assert response.get_json() == {"error": f"{field}: {problem}", "fields": {field: problem}}


def test_every_bad_field_is_named_at_once(client: FlaskClient, publisher: Account) -> None:
    response = preview(client, publisher, {"url": 5, "method": [], "events": "sale"})

    assert response.status_code == 400
    assert set(response.get_json()["fields"]) == {"url", "method", "events"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Without a URL there is nothing to send: a preview, not a 400, but not ok (saving refuses it).
        ({}, {"method": "GET", "url": None, "body": None, "content_type": None, "ok": False}),
        ({"url": None, "method": None, "headers": None}, {"method": "GET", "url": None, "ok": False}),
        (
            {"method": " post ", "body_template": "amount=#sa#"},
            {
                "method": "POST",
                "url": None,
                "body": "amount=125.00",
                "content_type": "application/x-www-form-urlencoded",
            },
        ),
        (
            {"url": URL, "events": ["approved"]},
            {"url": "https://tracker.example/pb?cid=cl1ck-4f2a", "ok": True},
        ),
    ],
)
def test_a_draft_may_leave_out_what_the_preview_does_not_need(
    client: FlaskClient, publisher: Account, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    response = preview(client, publisher, body)

    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert {key: answer[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"url": "https://t.example/pb?cid={clickid}"}, "url", "foreign_syntax"),
        ({"url": "https://10.0.0.5/pb?cid=#fobs#"}, "url", "private_address"),
        ({"url": URL, "headers": {"X-A": "#nope#"}}, "headers", "unknown_macro"),
        ({"url": URL, "method": "POST", "body_template": '{"a": #nope#}'}, "body_template", "unknown_macro"),
    ],
)
def test_what_a_template_says_is_a_finding_not_a_refusal(
    client: FlaskClient, publisher: Account, body: dict[str, Any], field: str, code: str
) -> None:
    response = preview(client, publisher, body)

    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["ok"] is False
    assert (field, "error", code) in {(f["field"], f["severity"], f["code"]) for f in answer["findings"]}


@pytest.mark.parametrize(
    "url",
    [
        "http://t.example:0/pb?cid=#fobs#",
        "http://t.example:99999/pb",
        "http://t.example:http/pb",
        "https://t.example/p b?cid=#fobs#",
        "https://t.example/p\tb",
        "https://10.0.0.5/pb?cid=#fobs#",
        "https://[::1]:8443/pb",
        URL,
        URL + "\n",  # pasted with its line end: saving strips it
        "  " + URL + " ",
        "http://t.example:8080/pb?cid=#fobs#",
        "",
        "   ",
    ],
)
def test_the_preview_says_ok_exactly_when_saving_would_accept_the_url_and_in_the_same_words(
    client: FlaskClient, publisher: Account, url: str
) -> None:
    previewed = preview(client, publisher, {"url": url}).get_json()
    saved = client.post("/api/v1/postbacks", json={"url": url}, headers=publisher.auth)

    assert previewed["ok"] is (saved.status_code == 201), (previewed, saved.get_json())
    if saved.status_code != 201:
        messages = [f["message"] for f in previewed["findings"] if f["field"] == "url"]
        assert saved.get_json()["fields"]["url"] in messages


@pytest.mark.parametrize(
    ("body", "warned"),
    [
        ({"url": "https://t.example/pb", "method": "POST", "body_template": '{"cid": "#fobs#"}'}, False),
        ({"url": "https://t.example/pb", "headers": {"X-Click": "#fobs2#"}}, False),
        ({"url": "https://t.example/pb", "method": "POST", "body_template": '{"payout": "#ca#"}'}, True),
        # A GET sends no body: a leftover body template with #fobs# identifies nothing.
        ({"url": "https://t.example/pb", "method": "GET", "body_template": '{"cid": "#fobs#"}'}, True),
    ],
)
def test_a_click_macro_in_the_body_or_a_header_identifies_the_click(
    client: FlaskClient, publisher: Account, body: dict[str, Any], warned: bool
) -> None:
    findings = preview(client, publisher, body).get_json()["findings"]
    assert any(f["code"] == "no_click_macro" for f in findings) is warned


@pytest.mark.parametrize(
    ("body", "side", "pieces"),
    [
        (
            {"url": "https://t.example/pb?c=#fobs#&x=#nope#&a=#sa#"},
            "url",
            [
                ("https://t.example/pb?c=cl1ck-4f2a&x=", None),
                ("#nope#", "Unknown macro #nope#"),
                ("&a=125.00", None),
            ],
        ),
        (
            {
                "url": "https://t.example/#nope#/x?c=#fobs#&o=#on#"
            },  # in the path, then the query, each encoded
            "url",
            [
                ("https://t.example/", None),
                ("#nope#", "Unknown macro"),
                ("/x?c=cl1ck-4f2a&o=ORD-10045", None),
            ],
        ),
        (
            {"url": "https://t.example/pb?c=#fobs#&x={clickid}&a=#sa"},
            "url",
            [
                ("https://t.example/pb?c=cl1ck-4f2a&x=", None),
                ("{clickid}", "{clickid} is your tracker's placeholder"),
                ("&a=", None),
                ("#sa", "#sa has no closing '#'"),
            ],
        ),
        # A host saving refuses: the whole URL is marked, its macros expanded.
        (
            {"url": "https://10.0.0.5/pb?c=#fobs#"},
            "url",
            [("https://10.0.0.5/pb?c=cl1ck-4f2a", "10.0.0.5 is")],
        ),
        (
            {"url": URL, "method": "POST", "body_template": "a=#fobs#&b=#nope#"},
            "body",
            [("a=cl1ck-4f2a&b=", None), ("#nope#", "Unknown macro #nope#")],
        ),
    ],
)
def test_a_template_with_errors_previews_what_would_be_sent_with_its_bad_parts_marked(
    client: FlaskClient,
    publisher: Account,
    body: dict[str, Any],
    side: str,
    pieces: list[tuple[str, str | None]],
) -> None:
    answer = preview(client, publisher, body).get_json()

    assert answer[side] is None and answer["ok"] is False
    marked = answer[f"{side}_marked"]
    assert [piece["text"] for piece in marked] == [text for text, _ in pieces]
    for piece, (_, problem) in zip(marked, pieces, strict=True):
        if problem is None:
            assert piece["problem"] is None
        else:
            assert piece["problem"].startswith(problem), piece
            assert piece["problem"] in {f["message"] for f in answer["findings"]}


def test_a_template_without_errors_has_nothing_marked(client: FlaskClient, publisher: Account) -> None:
    answer = preview(
        client, publisher, {"url": URL, "method": "POST", "body_template": "a=#fobs#"}
    ).get_json()

    assert answer["url"] and answer["body"] == "a=cl1ck-4f2a"
    assert answer["url_marked"] is None and answer["body_marked"] is None


def test_the_sale_amount_as_payout_gets_a_hint(client: FlaskClient, publisher: Account) -> None:
    findings = preview(client, publisher, {"url": URL + "&payout=#sa#"}).get_json()["findings"]
    [hint] = [f for f in findings if f["code"] == "sale_amount_as_payout"]
    assert hint["severity"] == "warning" and "#ca#" in hint["message"]


def test_the_preview_can_show_another_status_in_the_postbacks_words(
    client: FlaskClient, portal: FlaskClient, publisher: Account, token: str
) -> None:
    draft = {"url": URL + "&st=#status#", "status_map": {"reversed": "refund"}}

    default = preview(client, publisher, draft).get_json()
    reversed_ = client.post(PREVIEW + "?status=reversed", json=draft, headers=publisher.auth).get_json()
    declined = portal.post(
        "/portal/postbacks/preview",
        data={"url": URL + "&st=#status#", "preview_status": "declined"},
        headers={"X-CSRFToken": token},
    ).get_json()

    assert default["url"].endswith("&st=approved")
    assert reversed_["url"].endswith("&st=refund")
    assert declined["url"].endswith("&st=declined")
    refused = client.post(PREVIEW + "?status=paid", json=draft, headers=publisher.auth)
    assert refused.status_code == 400 and "status" in refused.get_json()["fields"]


def test_a_postback_id_past_bigint_is_refused_by_name_not_a_500(
    client: FlaskClient, publisher: Account
) -> None:
    response = client.post(
        PREVIEW + "?postback=9999999999999999999", json={"url": URL}, headers=publisher.auth
    )
    assert response.status_code == 400 and "postback" in response.get_json()["fields"]
