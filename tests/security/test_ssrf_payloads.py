"""Hostile destinations at registration, at send test and at delivery: none reaches the canary on loopback.

Every payload points at the canary's port where it has a port, so a hole shows as a canary hit, not only as a
wrong error class. Registration refuses every literal non-public address (in any spelling the resolver
accepts); a host name is only resolved when sending, so names are accepted there and refused (or unresolved)
by the egress guard. Send test and a real worker (`flask --app app worker --burst`) share that guard.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from flask import Flask
from sqlalchemy import select

from dispatcher.db import get_db
from dispatcher.egress.client import EgressClient, OutboundRequest
from dispatcher.models import Attempt, Delivery, Postback
from dispatcher.postback_rules import destination_problem
from dispatcher.queueing import enqueue_deliveries
from tests.dispatcher import factories
from tests.portal.conftest import make_publisher
from tests.security.conftest import ALLOWED, Canary, Redirector
from tests.workers.conftest import work_burst, worker_env

REFUSED = "refused"  # registration answers 400 naming the url
NAME = "name"  # a host name: accepted at registration, vetted when sending

SSRF = frozenset({"ssrf"})
TEMPLATE = frozenset({"template"})
DNS = frozenset({"dns"})
SSRF_OR_DNS = frozenset({"ssrf", "dns"})  # names whose answer depends on this machine's resolver


@dataclass(frozen=True)
class Payload:
    url: str
    registration: str
    sent: frozenset[str]


def payloads(port: int, redirect_port: int) -> list[Payload]:
    """Every hostile destination; `port` is the canary's, `redirect_port` the allowed redirector's."""
    loop = [
        # decimal, octal, hex and short IPv4 forms of 127.0.0.1 / 0.0.0.0
        "127.0.0.1",
        "127.1",
        "127.0.1",
        "2130706433",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "0x7f000001",
        "017700000001",
        "0x7f.1",
        "127.000.000.001",
        "127.255.255.254",
        "0",
        "0.0.0.0",
        # IPv6 loopback and IPv4 inside IPv6: mapped, compatible, 6to4, NAT64 (both prefixes)
        "[::1]",
        "[0:0:0:0:0:0:0:1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::127.0.0.1]",
        "[::]",
        "[2002:7f00:1::]",
        "[64:ff9b::7f00:1]",
        "[64:ff9b::127.0.0.1]",
        "[64:ff9b:1::7f00:1]",
        # localhost spellings
        "localhost",
        "LOCALHOST",
        "LocalHost",
        # full-width and ideographic spellings, which the one host parser (`dispatcher.egress.urls`) reads as
        # the sender does: refused at registration as the plain spelling is
        "ｌｏｃａｌｈｏｓｔ",
        "ＬＯＣＡＬＨＯＳＴ",
        "127。0。0。1",
        "127．0．0．1",
        "127｡0｡0｡1",
        "１２７.０.０.１",
        "１２７。０。０。１",
        "０ｘ７ｆ.１",
        "①②⑦.0.0.1",
        # userinfo tricks whose real host is the canary
        "a@127.0.0.1",
        "user:pass@127.0.0.1",
        "evil.example@127.0.0.1",
        "evil.example%40@127.0.0.1",
    ]
    cases = [Payload(f"http://{host}:{port}/pb?cid=#fobs#", REFUSED, SSRF) for host in loop]
    # Refused as literals at registration; whether the resolver knows them is this machine's business.
    cases += [
        Payload(f"http://{host}:{port}/pb?cid=#fobs#", REFUSED, SSRF_OR_DNS)
        for host in ("localhost.", "127.0.0.1.", "sub.localhost")
    ]
    cases += [
        Payload(f"https://127.0.0.1:{port}/pb", REFUSED, SSRF),
        Payload(f"http://127.0.0.1:{port}#@evil.example/", REFUSED, SSRF),
        # urlsplit sees 127.0.0.1, urllib3 sees evil.example: the one reading refuses the ambiguity itself
        Payload(f"http://evil.example\\@127.0.0.1:{port}/", REFUSED, TEMPLATE),
    ]
    elsewhere = [
        # cloud metadata and link-local
        "169.254.169.254",
        "169.254.170.2",
        "100.100.100.200",
        "[fe80::1]",
        "[fd00:ec2::254]",
        "[::ffff:a9fe:a9fe]",
        "[::ffff:169.254.169.254]",
        "[64:ff9b::a9fe:a9fe]",
        # private, shared, reserved, multicast, broadcast, documentation
        "10.0.0.1",
        "10.255.255.254",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.0.1",
        "192.168.1.254",
        "100.64.0.1",
        "100.127.255.254",
        "224.0.0.1",
        "239.255.255.250",
        "255.255.255.255",
        "240.0.0.1",
        "198.18.0.1",
        "192.0.0.1",
        "192.0.2.1",
        "[fc00::1]",
        "[ff02::1]",
        "[::ffff:10.0.0.1]",
        "[2002:a00:1::]",
        "[2002:c0a8:1::]",
        "[2001:0:4136:e378:8000:63bf:80ff:fffe]",  # Teredo
        "[64:ff9b::10.0.0.1]",
    ]
    cases += [Payload(f"http://{host}/latest/meta-data/", REFUSED, SSRF) for host in elsewhere]
    cases += [
        # host names: only the resolver knows; here they resolve to nothing or to a refused address
        Payload("http://metadata.google.internal/computeMetadata/v1/", NAME, SSRF_OR_DNS),
        Payload("http://metadata/computeMetadata/v1/", NAME, SSRF_OR_DNS),
        Payload(f"http://127.0.0.1.nip.io:{port}/", NAME, SSRF_OR_DNS),
        # userinfo: the host is evil.example
        Payload(f"http://127.0.0.1:{port}@evil.example/", NAME, SSRF_OR_DNS),
        # not http(s)
        Payload("file:///etc/passwd", REFUSED, TEMPLATE),
        Payload("gopher://127.0.0.1:70/_GET%20/", REFUSED, TEMPLATE),
        Payload("ftp://127.0.0.1/", REFUSED, TEMPLATE),
        Payload("dict://127.0.0.1:11211/stat", REFUSED, TEMPLATE),
        Payload("ldap://127.0.0.1/", REFUSED, TEMPLATE),
        Payload(f"jar:http://127.0.0.1:{port}/x!/", REFUSED, TEMPLATE),
        Payload("http:///etc/passwd", REFUSED, TEMPLATE),
        # an allowed receiver that redirects to the canary: redirects are never followed
        Payload(f"http://127.0.0.2:{redirect_port}/moved?cid=#fobs#", "accepted", frozenset({"redirect"})),
    ]
    return cases


def _hostile_rows(app: Flask, owner_id: int, cases: list[Payload]) -> tuple[list[int], list[int]]:
    """Each payload as a stored postback (as if saved before a rule existed) with one delivery of a sale."""
    with get_db(app).session() as session:
        owner = session.get_one(factories.Publisher, owner_id)
        shop = factories.program(session)
        clicked = factories.click(session, owner, shop, fobs="trk-1")
        happened = factories.event(session, factories.transaction(session, owner, shop, click_pk=clicked.id))
        hooks = [Postback(publisher_id=owner.id, url_template=case.url) for case in cases]
        session.add_all(hooks)
        session.flush()
        deliveries = [factories.delivery(session, hook, happened) for hook in hooks]
        return [hook.id for hook in hooks], [row.id for row in deliveries]


def test_every_payload_is_refused_at_registration_test_send_and_delivery_and_the_canary_hears_nothing(
    hostile_app: Flask,
    canary: Canary,
    redirector: Redirector,
    clean_redis: redis.Redis,
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cases = payloads(canary.port, redirector.port)
    client = hostile_app.test_client()
    owner = make_publisher(hostile_app)

    registered = {}
    for case in cases:
        response = client.post("/api/v1/postbacks", json={"url": case.url}, headers=owner.auth)
        registered[case.url] = response.status_code
        if case.registration == REFUSED:
            assert response.status_code == 400, (case.url, response.json)
            assert "url" in response.json["fields"], case.url
            assert any(
                words in response.json["fields"]["url"] for words in ("address", "http(s)", "user name")
            )
        else:
            assert response.status_code == 201, (case.url, response.json)

    hook_ids, delivery_ids = _hostile_rows(hostile_app, owner.id, cases)
    tested = {}
    for case, hook_id in zip(cases, hook_ids, strict=True):
        result = client.post(f"/api/v1/postbacks/{hook_id}/test", headers=owner.auth).json
        tested[case.url] = result["error_class"]
        assert result["ok"] is False and result["status_code"] in (None, 302), (case.url, result)
        assert result["error"], case.url
    unexpected = {case.url: tested[case.url] for case in cases if tested[case.url] not in case.sent}
    assert unexpected == {}

    enqueue_deliveries(clean_redis, delivery_ids)
    env = worker_env(get_db(hostile_app).url, redis_url, tmp_path, POSTBACK_ALLOWED_NETWORKS=ALLOWED)
    work_burst(env)

    with get_db(hostile_app).session() as session:
        rows = {row.id: row for row in session.scalars(select(Delivery).where(Delivery.id.in_(delivery_ids)))}
        tries = list(session.scalars(select(Attempt).where(Attempt.delivery_id.in_(delivery_ids))))
        by_delivery = {attempt.delivery_id: attempt for attempt in tries}
        assert len(tries) == len(cases)  # one attempt each, nothing retried within the run
        for case, delivery_id in zip(cases, delivery_ids, strict=True):
            attempt, row = by_delivery[delivery_id], rows[delivery_id]
            assert attempt.error_class in case.sent, (case.url, attempt.error_class, attempt.error_message)
            assert attempt.outcome == ("retry" if attempt.error_class == "dns" else "failed"), case.url
            if attempt.error_class != "dns":
                assert (row.state, row.attempt_count, row.next_attempt_at) == ("failed", 1, None), case.url

    refused_at_registration = sum(code == 400 for code in registered.values())
    with capsys.disabled():
        print(
            f"\nSSRF payloads: registration {len(cases)} ({refused_at_registration} refused with 400, "
            f"{len(cases) - refused_at_registration} host names or the allowed redirector accepted); "
            f"send test {len(tested)} {dict(Counter(tested.values()))}; "
            f"worker delivery {len(tries)} {dict(Counter(attempt.error_class for attempt in tries))}; "
            f"redirector hits {redirector.hits}; canary hits {canary.count()}"
        )
    assert redirector.hits == 2  # the send test and the delivery reached it, and neither followed it
    assert canary.count() == 0, canary.hits


def test_there_are_at_least_sixty_payloads() -> None:
    assert len(payloads(1, 2)) >= 60


@pytest.mark.parametrize(
    "host",
    [
        "[::127.0.0.1]",  # IPv4-compatible
        "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
        "[2002:a00:1::]",  # 6to4 of 10.0.0.1
        "[64:ff9b::7f00:1]",  # NAT64 of 127.0.0.1
        "[64:ff9b:1::a9fe:a9fe]",  # local-use NAT64 of 169.254.169.254
        "224.0.0.1",
        "[ff02::1]",
        "localhost.",
        "127.0.0.1.",
        "ｌｏｃａｌｈｏｓｔ。",
        "１６９。２５４。１６９。２５４",
    ],
)
def test_registration_refuses_every_literal_the_workers_would_refuse(host: str) -> None:
    """These were saved before (the portal asked `is_global`, blind to embedded IPv4 and multicast)."""
    problem = destination_problem(f"http://{host}/pb")

    assert problem is not None and problem.endswith("address; postbacks only go to public addresses")


def test_the_canary_counts_whatever_reaches_it(canary: Canary) -> None:
    """The control: with loopback allowed, the same client reaches the canary on both families."""
    networks = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    client = EgressClient(networks)
    targets = ["127.0.0.1", "[::1]"][: len(canary.servers)]
    try:
        answers = [client.send(OutboundRequest("GET", f"http://{h}:{canary.port}/ping")) for h in targets]
    finally:
        client.close()

    assert [answer.status_code for answer in answers] == [200] * len(targets)
    assert sum(hit.startswith("GET") for hit in canary.hits) == len(targets)
