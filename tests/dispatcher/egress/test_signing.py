"""Standard Webhooks signatures, checked against the specification's published test vector."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import macros
from dispatcher.egress import render, signing, ssrf
from dispatcher.egress.client import EgressClient, OutboundRequest
from dispatcher.models import Postback
from tests.dispatcher.egress.readme_signature import readme_verifier
from tests.workers.conftest import Receiver

# From the Standard Webhooks reference libraries' test suite.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_signature_matches_the_specification_vector() -> None:
    assert signing.sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_the_headers_carry_id_timestamp_and_signature() -> None:
    headers = signing.headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)

    assert headers == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }


def test_a_secret_without_the_prefix_is_used_as_its_text() -> None:
    assert signing.secret_key("plain-secret") == b"plain-secret"
    assert signing.sign("plain-secret", "m", 1, b"") != signing.sign("other-secret", "m", 1, b"")


# What is signed is what is sent: a GET's values are in its URL, so a GET signs the URL as the receiver gets
# it. Checked at a real receiver with the README's own verification code, from what it received.

SECRET = "whsec_" + base64.b64encode(b"receiver-side-check-32-bytes-key").decode()
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _build(url: str, method: str = "GET", **postback: Any) -> OutboundRequest:
    """Signed now: the README's check refuses a timestamp more than 5 minutes away."""
    hook = Postback(id=7, publisher_id=1, url_template=url, method=method, signing_secret=SECRET, **postback)
    job = render.Claimed(
        delivery_id=42,
        number=1,
        attempt_in_schedule=1,
        postback_id=7,
        sendable=True,
        paused_reason=None,
        success_body_contains=None,
        values={**macros.sample_values(), "fobs": "cl1ck 4f2a/日本"},
        postback=hook,
    )
    return render.build_request(job, datetime.now(UTC), render.USER_AGENT)


def _received_and_verified(receiver: Receiver, request: OutboundRequest, resolver: Any = None) -> bool:
    client = EgressClient(LOOPBACK, resolver=resolver or ssrf.system_resolver)
    try:
        exchange = client.send(request)
    finally:
        client.close()
    assert exchange.status_code == 200, exchange.error
    [hit] = receiver.received
    url = "http://" + hit.headers["Host"] + hit.path  # as the README tells receivers to rebuild it
    return readme_verifier()(
        SECRET,
        hit.headers["webhook-id"],
        hit.headers["webhook-timestamp"],
        hit.headers["webhook-signature"],
        hit.method,
        url,
        hit.body,
    )


@pytest.mark.parametrize(
    "path",
    [
        "/pb?cid=#fobs#&amount=#sa#&status=#status#",
        "/a/../pb/café?x=%7e&y=%e6|#fobs#",  # typed text the HTTP client re-quotes: signed as it re-quotes it
        "?only=#fobs#",
    ],
)
def test_a_signed_get_verifies_from_the_url_the_receiver_got(receiver: Receiver, path: str) -> None:
    request = _build(f"http://127.0.0.1:{receiver.port}{path}")

    assert _received_and_verified(receiver, request)


def test_the_host_signed_is_the_host_sent_for_an_international_name(receiver: Receiver) -> None:
    request = _build(f"http://Exämple.COM:{receiver.port}/pb?cid=#fobs#")

    assert _received_and_verified(receiver, request, resolver=lambda host, port: ["127.0.0.1"])
    assert receiver.received[0].headers["Host"] == f"xn--exmple-cua.com:{receiver.port}"


def test_a_get_signature_covers_the_query(receiver: Receiver) -> None:
    request = _build(f"http://127.0.0.1:{receiver.port}/pb?cid=#fobs#")
    changed = OutboundRequest(request.method, request.url.replace("cid=", "cid=x"), request.headers)

    assert not _received_and_verified(receiver, changed)


def test_a_signed_post_verifies_from_its_body_as_the_standard_says(receiver: Receiver) -> None:
    request = _build(
        f"http://127.0.0.1:{receiver.port}/hook", "POST", body_template='{"cid": "#fobs#", "amount": #sa#}'
    )

    assert request.body is not None
    timestamp = int(request.headers["webhook-timestamp"])
    assert request.headers["webhook-signature"] == signing.sign(SECRET, "dlv_42", timestamp, request.body)
    assert _received_and_verified(receiver, request)
