"""The egress client alone, HTTP mocked at the edge (`responses`); the address check is tested for real."""

from __future__ import annotations

import ipaddress

import responses

from dispatcher.egress.client import EgressClient, OutboundRequest
from dispatcher.models.deliveries import RESPONSE_EXCERPT_BYTES

PUBLIC = lambda host, port: ["93.184.216.34"]  # noqa: E731 - a resolver that answers a public address


@responses.activate
def test_a_get_returns_status_headers_and_an_excerpt() -> None:
    responses.get("https://tracker.example/pb", body="OK", headers={"X-Seen": "1"})

    exchange = EgressClient(resolver=PUBLIC).send(OutboundRequest("GET", "https://tracker.example/pb?cid=1"))

    assert (exchange.status_code, exchange.excerpt, exchange.error) == (200, "OK", None)
    assert exchange.headers is not None and exchange.headers["X-Seen"] == "1"


@responses.activate
def test_a_post_sends_the_body_and_headers_given() -> None:
    responses.post("https://tracker.example/hook", status=204)
    request = OutboundRequest(
        "POST",
        "https://tracker.example/hook",
        {"Content-Type": "application/json", "User-Agent": "ua"},
        b"{}",
    )

    exchange = EgressClient(resolver=PUBLIC).send(request)

    sent = responses.calls[0].request
    assert (exchange.status_code, sent.body, sent.headers["Content-Type"]) == (204, b"{}", "application/json")
    assert sent.headers["User-Agent"] == "ua"


@responses.activate
def test_a_redirect_is_returned_as_it_is_not_followed() -> None:
    responses.get("https://tracker.example/pb", status=301, headers={"Location": "http://169.254.169.254/"})

    exchange = EgressClient(resolver=PUBLIC).send(OutboundRequest("GET", "https://tracker.example/pb"))

    assert exchange.status_code == 301 and len(responses.calls) == 1


@responses.activate
def test_only_the_first_4_kib_of_a_body_are_kept() -> None:
    responses.get("https://tracker.example/pb", body="y" * 100_000)

    exchange = EgressClient(resolver=PUBLIC).send(OutboundRequest("GET", "https://tracker.example/pb"))

    assert exchange.excerpt == "y" * RESPONSE_EXCERPT_BYTES


def test_a_url_that_is_not_http_is_a_permanent_template_error() -> None:
    client = EgressClient([ipaddress.ip_network("0.0.0.0/0")])

    exchange = client.send(OutboundRequest("GET", "file:///etc/passwd"))

    assert exchange.error is not None
    assert (exchange.error.error_class, exchange.error.permanent) == ("template", True)
