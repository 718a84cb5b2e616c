"""The three ways a delivery could fail for ever or prove nothing, through real worker processes
(`flask --app app worker --burst`) and a real receiver: a header value outside Latin-1, a host spelled in
full-width or ideographic characters, and a signed GET (its signature now covers the URL the receiver got)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from dispatcher.db import Database
from dispatcher.models import Base, Postback
from dispatcher.queueing import enqueue_deliveries
from tests.conftest import postgres_schema
from tests.dispatcher import factories
from tests.dispatcher.egress.readme_signature import readme_verifier
from tests.workers.conftest import Receiver, attempt_rows, delivery_row, run_command, worker_env

pytestmark = pytest.mark.processes

SECRET = "whsec_" + base64.b64encode(b"defects-integration-signing-key!").decode()
JAPANESE = "日本語"


@dataclass(frozen=True)
class Case:
    path: str
    url: str  # {port} and {path} are filled in
    fobs: str = "trk-1"
    fields: tuple[tuple[str, Any], ...] = ()


# Sent by a worker that may reach 127.0.0.0/8, as the test receiver needs.
ALLOWED = [
    Case("/jp", "http://127.0.0.1:{port}{path}?cid=#fobs#", JAPANESE, (("headers", {"X-Sub": "#fobs#"}),)),
    Case("/euro", "http://127.0.0.1:{port}{path}", fields=(("headers", {"X-Euro": "€uro"}),)),  # stored
    Case("/name", "http://127.0.0.1:{port}{path}", fields=(("headers", {"X-Ü": "1"}),)),  # stored
    Case("/wide", "http://１２７。０。０。１:{port}{path}?cid=#fobs#"),
    Case(
        "/get",
        "http://127.0.0.1:{port}{path}?cid=#fobs#&sa=#sa#",
        "日本 語/?&",
        (("signing_secret", SECRET),),
    ),
    Case(
        "/post",
        "http://127.0.0.1:{port}{path}?cid=#fobs#",
        fields=(("method", "POST"), ("body_template", '{"cid": "#fobs#"}'), ("signing_secret", SECRET)),
    ),
]
# Sent by a worker with no private range allowed, as in production.
STRICT = [
    Case("/ssrf-wide", "http://ｌｏｃａｌｈｏｓｔ:{port}{path}?cid=#fobs#"),
    Case("/ssrf-dots", "http://127。0。0。1:{port}{path}?cid=#fobs#"),
]


@dataclass
class Scenario:
    database: Database
    receiver: Receiver
    ids: dict[str, int]


@contextmanager
def _empty_database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'sendable.db'}"
        return
    with postgres_schema() as url:
        yield url


def _delivery(database: Database, url: str, fobs: str, fields: dict[str, Any]) -> int:
    """A sale whose click carries `fobs`, and one delivery to a postback stored as given (saving's rules
    would refuse some of these today: they stand for rows stored before them)."""
    with database.session() as session:
        owner = factories.publisher(session)
        shop = factories.program(session)
        clicked = factories.click(session, owner, shop, fobs=fobs)
        happened = factories.event(session, factories.transaction(session, owner, shop, click_pk=clicked.id))
        hook = Postback(publisher_id=owner.id, url_template=url, **fields)
        session.add(hook)
        session.flush()
        return factories.delivery(session, hook, happened).id


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def scenario(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Scenario]:
    tmp_path = tmp_path_factory.mktemp("sendable")
    with _empty_database(request.param, tmp_path) as url:
        database = Database(url)
        Base.metadata.create_all(database.engine)
        receiver = Receiver()
        client = redis.Redis.from_url(redis_url)
        client.flushall()
        ids: dict[str, int] = {}
        for cases, allowed in ((ALLOWED, "127.0.0.0/8"), (STRICT, "")):
            batch = []
            for case in cases:
                target = case.url.format(port=receiver.port, path=case.path)
                ids[case.path] = _delivery(database, target, case.fobs, dict(case.fields))
                batch.append(ids[case.path])
            enqueue_deliveries(client, batch)
            env = worker_env(url, redis_url, tmp_path, POSTBACK_ALLOWED_NETWORKS=allowed)
            done = run_command(env, "worker", "--burst")
            assert done.returncode == 0, done.stderr
        yield Scenario(database, receiver, ids)
        receiver.close()
        database.dispose()


def _outcome(scenario: Scenario, path: str) -> tuple[str, str | None, str, int]:
    [attempt] = attempt_rows(scenario.database, scenario.ids[path])
    row = delivery_row(scenario.database, scenario.ids[path])
    return attempt.outcome, attempt.error_class, row.state, row.attempt_count


@pytest.mark.parametrize(
    ("path", "sent"), [("/jp", "%E6%97%A5%E6%9C%AC%E8%AA%9E"), ("/euro", "%E2%82%ACuro")]
)
def test_a_header_value_outside_latin_1_is_delivered_percent_encoded(
    scenario: Scenario, path: str, sent: str
) -> None:
    [hit] = scenario.receiver.hits(path)
    header = "X-Sub" if path == "/jp" else "X-Euro"
    [attempt] = attempt_rows(scenario.database, scenario.ids[path])

    assert _outcome(scenario, path) == ("succeeded", None, "succeeded", 1)
    assert hit.headers[header] == sent
    assert (attempt.request_headers or {})[header] == sent  # the attempt log shows what was sent


def test_a_header_that_cannot_be_sent_fails_for_good_as_template_never_as_connect(scenario: Scenario) -> None:
    [attempt] = attempt_rows(scenario.database, scenario.ids["/name"])

    assert _outcome(scenario, "/name") == ("failed", "template", "failed", 1)
    assert "the header name 'X-Ü' is not an HTTP token" in (attempt.error_message or "")
    assert scenario.receiver.hits("/name") == []


def test_a_full_width_host_goes_to_the_address_saving_checked(scenario: Scenario) -> None:
    [hit] = scenario.receiver.hits("/wide")
    [attempt] = attempt_rows(scenario.database, scenario.ids["/wide"])

    assert _outcome(scenario, "/wide") == ("succeeded", None, "succeeded", 1)
    assert hit.headers["Host"] == f"127.0.0.1:{scenario.receiver.port}"
    assert (attempt.resolved_ip, attempt.url) == (
        "127.0.0.1",
        f"http://127.0.0.1:{scenario.receiver.port}/wide?cid=trk-1",
    )


@pytest.mark.parametrize("path", [case.path for case in STRICT])
def test_a_full_width_or_ideographic_spelling_of_loopback_never_reaches_it(
    scenario: Scenario, path: str
) -> None:
    [attempt] = attempt_rows(scenario.database, scenario.ids[path])

    assert _outcome(scenario, path) == ("failed", "ssrf", "failed", 1)
    assert "resolves to 127.0.0.1, a loopback address" in (attempt.error_message or "")
    assert scenario.receiver.hits(path) == []


@pytest.mark.parametrize("path", ["/get", "/post"])
def test_the_signature_verifies_from_what_the_receiver_got(scenario: Scenario, path: str) -> None:
    [hit] = scenario.receiver.hits(path)
    url = "http://" + hit.headers["Host"] + hit.path

    assert _outcome(scenario, path) == ("succeeded", None, "succeeded", 1)
    assert readme_verifier()(
        SECRET,
        hit.headers["webhook-id"],
        hit.headers["webhook-timestamp"],
        hit.headers["webhook-signature"],
        hit.method,
        url,
        hit.body,
    )


def test_a_signed_get_carries_its_values_in_the_signed_url(scenario: Scenario) -> None:
    [hit] = scenario.receiver.hits("/get")

    assert hit.method == "GET" and hit.body == b""
    assert hit.path == "/get?cid=%E6%97%A5%E6%9C%AC%20%E8%AA%9E%2F%3F%26&sa=100.00"
