"""The postback check shared by the form and the API: every problem named with its value, all at once."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest

import macros
from dispatcher.postback_rules import HEADER_NAME_RULE, Invalid, PostbackSpec, check, destination_problem

FLEXOFFERS = "http://yourdomain.com/pixel.track?sid=#fobs#&orderid=#on#&amount=#sa#&commission=#ca#&date=#et#"


def problems(**values: object) -> dict[str, str]:
    with pytest.raises(Invalid) as caught:
        check({"url": "https://t.example/pb?cid=#fobs#", **values}, own_source_ids={1, 2})
    return caught.value.problems


def test_a_pasted_flexoffers_url_is_accepted_with_defaults() -> None:
    spec = check({"url": FLEXOFFERS}, own_source_ids=set())

    assert spec == PostbackSpec(url=FLEXOFFERS)
    assert spec.events == ("sale", "lead") and spec.method == "GET"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"method": "PUT"}, {"method": "must be GET or POST, got 'PUT'"}),
        (
            {"events": []},
            {"events": "choose at least one of sale, lead, approved, declined, reversed, adjusted"},
        ),
        (
            {"events": ["sold"]},
            {"events": "must each be one of sale, lead, approved, declined, reversed, adjusted, got 'sold'"},
        ),
        (
            {"statuses": ["done"]},
            {"statuses": "must each be one of pending, approved, declined, reversed, got 'done'"},
        ),
        ({"traffic_source_ids": [3]}, {"traffic_source_ids": "3 is not one of your traffic sources"}),
        (
            {"traffic_source_ids": "all"},
            {"traffic_source_ids": "must be a list of traffic source ids ([] for all), got 'all'"},
        ),
        ({"headers": {"Host": "evil.example"}}, {"headers": "Host is set from the URL and cannot be set"}),
        (
            {"headers": {"Transfer-Encoding": "chunked"}},
            {"headers": "Transfer-Encoding is a hop-by-hop header and cannot be set"},
        ),
        (
            {"headers": {"X Bad": "1"}},
            {"headers": f"{HEADER_NAME_RULE}, got 'X Bad'"},
        ),
        (
            {"headers": {"X-A": "a\r\nB: c"}},
            {
                "headers": "the value of X-A must not contain line breaks or control characters,"
                " got 'a\\r\\nB: c'"
            },
        ),
        (
            {"headers": {"X-Ü": "1"}},
            {"headers": f"{HEADER_NAME_RULE}, got 'X-Ü'"},
        ),
        (
            {"headers": {"X:A": "1"}},
            {"headers": f"{HEADER_NAME_RULE}, got 'X:A'"},
        ),
        (
            {"headers": {"X-Euro": "€uro"}},
            {
                "headers": "the value of X-Euro holds '€' (U+20AC), which an HTTP header cannot carry:"
                " header values are Latin-1 text (ASCII and accented Latin letters, no control characters),"
                " got '€uro'"
            },
        ),
        (
            {"headers": {"X-Sub": "#fobs#-日本語"}},
            {
                "headers": "the value of X-Sub holds '日' (U+65E5), which an HTTP header cannot carry: header"
                " values are Latin-1 text (ASCII and accented Latin letters, no control characters),"
                " got '#fobs#-日本語'"
            },
        ),
        (
            {"url": "https://a..b/pb?cid=#fobs#"},
            {"url": "a..b is not a valid host name (labels of letters, digits, - and _, each 1 to 63 long)"},
        ),
        (
            {"url": "https://tracker.1/pb?cid=#fobs#"},
            {"url": "tracker.1 ends in a number but is not an IPv4 address"},
        ),
        (
            {"status_map": {"paid": "sale"}},
            {"status_map": "keys must be one of pending, approved, declined, reversed, got 'paid'"},
        ),
        ({"active": "yes"}, {"active": "must be true or false, got 'yes'"}),
        (
            {"method": "POST", "content_type": "text/xml", "body_template": "x"},
            {
                "content_type": "must be one of application/json, application/x-www-form-urlencoded,"
                " got 'text/xml'"
            },
        ),
    ],
)
def test_each_bad_field_is_named_with_its_value(values: dict[str, object], expected: dict[str, str]) -> None:
    assert problems(**values) == expected


def test_lint_errors_block_saving_with_the_linters_words() -> None:
    found = problems(url="https://t.example/pb?cid=REPLACE&x=#fob#")

    assert found == {
        "url": "REPLACE is your tracker's placeholder, left from its postback URL,"
        " and would arrive literally;"
        " for cid put #fobs#. Unknown macro #fob#; did you mean #fobs#?"
    }


def test_a_missing_url_and_several_problems_are_reported_together() -> None:
    with pytest.raises(Invalid) as caught:
        check({"method": "PUT", "events": []}, own_source_ids=set())

    assert caught.value.problems == {
        "method": "must be GET or POST, got 'PUT'",
        "events": "choose at least one of sale, lead, approved, declined, reversed, adjusted",
        "url": "is required: paste your tracker's postback URL",
    }
    assert caught.value.message.startswith("method: must be GET or POST, got 'PUT'; events: ")


def test_a_json_body_is_linted_as_json_and_a_get_drops_any_body() -> None:
    assert problems(method="POST", body_template='{"cid": #fobs#') == {
        "body_template": "With sample values the body is not valid JSON (Expecting ',' delimiter);"
        " check quotes and commas around macros."
    }
    spec = check(
        {"url": "https://t.example/pb?cid=#fobs#", "method": "GET", "body_template": "a=#on#"},
        own_source_ids=set(),
    )
    assert spec.body_template is None and spec.content_type is None


def test_post_body_content_type_is_guessed_from_the_body() -> None:
    spec = check(
        {"url": "https://t.example/pb", "method": "post", "body_template": '{"cid": "#fobs#"}'},
        own_source_ids=set(),
    )

    assert (spec.method, spec.content_type) == ("POST", "application/json")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://127.0.0.1/pb", "127.0.0.1 is a loopback address; postbacks only go to public addresses"),
        ("https://10.1.2.3/pb", "10.1.2.3 is a private address; postbacks only go to public addresses"),
        ("https://[::1]/pb", "::1 is a loopback address; postbacks only go to public addresses"),
        (
            "https://localhost:8080/pb",
            "localhost is a loopback address; postbacks only go to public addresses",
        ),
        (
            "https://2130706433/pb",
            "2130706433 (127.0.0.1) is a loopback address; postbacks only go to public addresses",
        ),
        # Spellings the sender reads as those addresses (one host parser, `dispatcher.egress.urls`).
        (
            "https://ｌｏｃａｌｈｏｓｔ/pb",
            "ｌｏｃａｌｈｏｓｔ (localhost) is a loopback address; postbacks only go to public addresses",
        ),
        (
            "https://127。0。0。1/pb",
            "127。0。0。1 (127.0.0.1) is a loopback address; postbacks only go to public addresses",
        ),
        (
            "https://１０．０．０．５:8080/pb",
            "１０．０．０．５ (10.0.0.5) is a private address; postbacks only go to public addresses",
        ),
        ("https://ｔｒａｃｋｅｒ.example/pb", None),
        (
            "https://169.254.169.254/latest",
            "169.254.169.254 is a private address; postbacks only go to public addresses",
        ),
        ("https://tracker.example/pb", None),
        ("https://8.8.8.8/pb", None),
    ],
)
def test_literal_private_destinations_are_refused(url: str, problem: str | None) -> None:
    assert destination_problem(url) == problem


def test_a_time_pattern_with_a_space_is_accepted_and_sent_encoded() -> None:
    """README's own example of a strftime modifier holding a space used to be refused as a URL with spaces."""
    url = "https://t.example/pb?cid=#fobs#&at=#et:%Y-%m-%d %H:%M:%S#"

    spec = check({"url": url}, own_source_ids=set())

    assert spec.url == url
    sent = macros.parse(url).expand({"fobs": "c1", "et": datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)})
    assert sent == "https://t.example/pb?cid=c1&at=2024-05-01%2012%3A34%3A56"
    assert problems(url="https://t.example/pb?cid=#fobs#&at=a b") == {
        "url": "must not contain spaces or control characters, got 'https://t.example/pb?cid=#fobs#&at=a b'"
    }
    assert "url" in problems(url="https://t.example/pb?cid=#fobs#&at=#et:%Y\t%H#")


def test_a_header_value_in_latin_1_and_a_macro_are_accepted_as_typed() -> None:
    spec = check(
        {"url": "https://t.example/pb", "headers": {"X-Name": "Café", "X-Sub": "#fobs#"}},
        own_source_ids=set(),
    )

    assert spec.headers == {"X-Name": "Café", "X-Sub": "#fobs#"}


def test_an_international_host_is_saved_as_typed_and_sent_as_a_labels() -> None:
    spec = check({"url": "https://exämple.com/pb?cid=#fobs#"}, own_source_ids=set())

    assert spec.url == "https://exämple.com/pb?cid=#fobs#"


def test_allowed_networks_open_a_private_range() -> None:
    allowed = (ipaddress.ip_network("127.0.0.0/8"),)

    assert destination_problem("http://127.0.0.1:9000/pb", allowed) is None
    spec = check({"url": "http://127.0.0.1:9000/pb?c=#fobs#"}, own_source_ids=set(), allowed_networks=allowed)
    assert spec.url == "http://127.0.0.1:9000/pb?c=#fobs#"
