"""The egress client alone, against a real local receiver (a resolver points tracker.example at it)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from dispatcher.egress.client import EgressClient, OutboundRequest
from dispatcher.models.deliveries import RESPONSE_EXCERPT_BYTES
from dispatcher.redis_server import free_port
from tests.workers.conftest import Receiver, Reply

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def tracker(receiver: Receiver) -> tuple[EgressClient, str]:
    """A client whose resolver answers loopback for tracker.example (allowed here), and its base URL."""
    return EgressClient(
        LOOPBACK, resolver=lambda host, port: ["127.0.0.1"]
    ), f"http://tracker.example:{receiver.port}"


def test_a_get_returns_status_headers_and_an_excerpt(receiver: Receiver) -> None:
    receiver.script["/pb"] = [Reply(200, b"OK", {"X-Seen": "1"})]
    client, base = tracker(receiver)

    exchange = client.send(OutboundRequest("GET", f"{base}/pb?cid=1"))

    assert (exchange.status_code, exchange.excerpt, exchange.error) == (200, "OK", None)
    assert exchange.headers is not None and exchange.headers["X-Seen"] == "1"
    [hit] = receiver.received
    # Connected to the vetted address; the name is what the receiver sees.
    assert (exchange.resolved_ip, hit.path, hit.headers["Host"]) == (
        "127.0.0.1",
        "/pb?cid=1",
        f"tracker.example:{receiver.port}",
    )


def test_a_post_sends_the_body_and_headers_given(receiver: Receiver) -> None:
    receiver.script["/hook"] = [Reply(204, b"")]
    client, base = tracker(receiver)
    request = OutboundRequest(
        "POST", f"{base}/hook", {"Content-Type": "application/json", "User-Agent": "ua"}, b"{}"
    )

    exchange = client.send(request)

    [sent] = receiver.received
    assert (exchange.status_code, sent.method, sent.body) == (204, "POST", b"{}")
    assert (sent.headers["Content-Type"], sent.headers["User-Agent"]) == ("application/json", "ua")


def test_a_redirect_is_returned_as_it_is_not_followed(receiver: Receiver) -> None:
    receiver.script["/pb"] = [Reply(301, b"", {"Location": "http://169.254.169.254/"})]
    client, base = tracker(receiver)

    exchange = client.send(OutboundRequest("GET", f"{base}/pb"))

    assert exchange.status_code == 301 and len(receiver.received) == 1


def test_only_the_first_4_kib_of_a_body_are_kept(receiver: Receiver) -> None:
    receiver.script["/pb"] = [Reply(200, b"y" * 100_000)]
    client, base = tracker(receiver)

    exchange = client.send(OutboundRequest("GET", f"{base}/pb"))
    after = client.send(OutboundRequest("GET", f"{base}/pb"))  # the dropped connection is not reused

    assert exchange.excerpt == "y" * RESPONSE_EXCERPT_BYTES
    assert after.excerpt == "y" * RESPONSE_EXCERPT_BYTES


def test_a_connection_is_kept_alive_for_the_next_request(receiver: Receiver) -> None:
    client, base = tracker(receiver)

    for _ in range(3):
        assert client.send(OutboundRequest("GET", f"{base}/pb")).status_code == 200

    assert len({hit.client_port for hit in receiver.received}) == 1


def test_a_url_that_is_not_http_is_a_permanent_template_error() -> None:
    client = EgressClient([ipaddress.ip_network("0.0.0.0/0")])

    exchange = client.send(OutboundRequest("GET", "file:///etc/passwd"))

    assert exchange.error is not None
    assert (exchange.error.error_class, exchange.error.permanent) == ("template", True)


# A request that cannot be sent is the postback's fault: a permanent `template` failure, found before anything
# is sent; never an exception out of `send` (a 500 in the send test), nor a `connect` error that blames the
# receiver.


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"X-Euro": "€uro"}, "the value of X-Euro holds '€' (U+20AC)"),
        ({"X-Sub": "日本語"}, "the value of X-Sub holds '日' (U+65E5)"),
        ({"X-Ü": "1"}, "the header name 'X-Ü' is not an HTTP token"),
    ],
)
def test_a_header_that_cannot_be_sent_is_a_permanent_template_error(
    receiver: Receiver, headers: dict[str, str], problem: str
) -> None:
    client = EgressClient(LOOPBACK)

    exchange = client.send(OutboundRequest("GET", receiver.url("/pb"), headers))

    assert exchange.error is not None
    assert (exchange.error.error_class, exchange.error.permanent) == ("template", True)
    assert problem in exchange.error.message
    assert receiver.received == []


@pytest.mark.parametrize("host", ["１２７。０。０。１", "127。0。0。1", "127．0．0．1", "ｌｏｃａｌｈｏｓｔ"])
def test_a_full_width_or_ideographic_spelling_reaches_the_address_it_spells_through_the_guard(
    receiver: Receiver, host: str
) -> None:
    exchange = EgressClient(LOOPBACK).send(OutboundRequest("GET", receiver.url("/pb", host=host)))

    assert (exchange.status_code, exchange.resolved_ip) == (200, "127.0.0.1")
    [hit] = receiver.received
    assert hit.headers["Host"] in (f"127.0.0.1:{receiver.port}", f"localhost:{receiver.port}")


@pytest.mark.parametrize("host", ["１２７。０。０。１", "127。0。0。1", "ｌｏｃａｌｈｏｓｔ", "①②⑦.0.0.1"])
def test_a_full_width_or_ideographic_spelling_of_loopback_is_refused_as_ssrf(
    receiver: Receiver, host: str
) -> None:
    exchange = EgressClient().send(OutboundRequest("GET", receiver.url("/pb", host=host)))

    assert exchange.error is not None
    assert (exchange.error.error_class, exchange.error.permanent) == ("ssrf", True)
    assert "127.0.0.1, a loopback address" in exchange.error.message
    assert receiver.received == []


def test_a_refused_connection_reads_as_words_a_publisher_understands() -> None:
    client = EgressClient((ipaddress.ip_network("127.0.0.0/8"),))
    exchange = client.send(OutboundRequest("GET", f"http://127.0.0.1:{free_port()}/pb"))

    assert exchange.error is not None and exchange.error.error_class == "connect"
    message = str(exchange.error)
    assert "connection refused (nothing accepts connections on that port)" in message
    assert "Errno" not in message and "Connection(" not in message


def test_an_unknown_host_reads_without_pythons_error_number() -> None:
    client = EgressClient(())
    exchange = client.send(OutboundRequest("GET", "http://no-such-host.invalid/pb"))

    assert exchange.error is not None and exchange.error.error_class == "dns"
    assert "cannot resolve 'no-such-host.invalid'" in str(exchange.error)
    assert "Errno" not in str(exchange.error)
