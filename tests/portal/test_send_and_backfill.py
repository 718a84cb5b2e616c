"""Send test from the page (through the workers' SSRF-guarded egress) and backfill of past transactions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from dispatcher import backfill
from dispatcher.db import get_db
from dispatcher.models import Base, Delivery, Postback
from dispatcher.redis_server import free_port
from tests.conftest import app_settings
from tests.dispatcher import factories
from tests.portal.conftest import Account, Receiver, csrf_token, log_in, make_publisher
from tests.workers.conftest import work_burst, worker_env


def hook(app: Flask, owner: Account, url: str, **fields: object) -> int:
    with get_db(app).session() as session:
        row = Postback(publisher_id=owner.id, url_template=url, **fields)
        session.add(row)
        session.flush()
        return row.id


def test_send_test_shows_the_receivers_status_latency_and_answer_escaped(
    app: Flask, portal: FlaskClient, publisher: Account, token: str, receiver: Receiver
) -> None:
    receiver.body = b"<img src=x onerror=alert(1)> OK"
    postback_id = hook(app, publisher, receiver.url + "/pb?cid=#fobs#&amount=#sa#")

    page = portal.post(f"/portal/postbacks/{postback_id}/test", data={"csrf_token": token}).get_data(
        as_text=True
    )

    assert "<strong>Success</strong>" in page and "HTTP 200 OK" in page and " ms" in page
    assert "&lt;img src=x onerror=alert(1)&gt; OK" in page and "<img src=x" not in page
    assert [call.path for call in receiver.received] == ["/pb?cid=cl1ck-4f2a&amount=125.00"]


def test_send_test_applies_the_success_rule(
    app: Flask, portal: FlaskClient, publisher: Account, token: str, receiver: Receiver
) -> None:
    receiver.body = b"success=false"
    postback_id = hook(app, publisher, receiver.url + "/pb?cid=#fobs#", success_body_contains="success=true")

    page = portal.post(f"/portal/postbacks/{postback_id}/test", data={"csrf_token": token}).get_data(
        as_text=True
    )

    assert "<strong>Failed</strong>" in page
    assert "body_mismatch: answered 200 OK but the body lacks &#39;success=true&#39;" in page


REAL_VALUES_URL = "/pb?cid=#fobs#&on=#on#&amount=#sa#&payout=#ca#&event=#event#&status=#status#"


def test_send_test_uses_the_values_given_through_the_status_words(
    app: Flask, portal: FlaskClient, publisher: Account, token: str, receiver: Receiver
) -> None:
    postback_id = hook(app, publisher, receiver.url + REAL_VALUES_URL, status_map={"reversed": "refund"})

    form = {"click_id": "cf-real 9", "order_number": "ORD-9", "amount": "40", "status": "reversed"}
    page = portal.post(f"/portal/postbacks/{postback_id}/test", data={"csrf_token": token, **form})

    assert page.status_code == 200 and "<strong>Success</strong>" in page.get_data(as_text=True)
    # Blank fields keep the sample's (commission 12.50, event sale); the status goes in the receiver's word.
    assert receiver.received[-1].path == (
        "/pb?cid=cf-real%209&on=ORD-9&amount=40.00&payout=12.50&event=sale&status=refund"
    )
    assert 'value="cf-real 9"' in page.get_data(as_text=True)  # the form keeps what was typed


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"amount": "12.345"}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"commission": "a lot"}, "commission"),
        ({"event": "refund"}, "event"),
        ({"status": "paid"}, "status"),
        ({"click_id": "x" * 256}, "click_id"),
        ({"order_number": "a\x00b"}, "order_number"),
        ({"payout": "1"}, "payout"),
    ],
)
def test_send_test_refuses_a_bad_value_naming_it_and_sends_nothing(
    app: Flask,
    client: FlaskClient,
    portal: FlaskClient,
    publisher: Account,
    token: str,
    receiver: Receiver,
    given: dict[str, str],
    field: str,
) -> None:
    postback_id = hook(app, publisher, receiver.url + REAL_VALUES_URL)

    page = portal.post(f"/portal/postbacks/{postback_id}/test", data={"csrf_token": token, **given})
    assert page.status_code == 400 and field in page.get_data(as_text=True)
    api = client.post(f"/api/v1/postbacks/{postback_id}/test", json=given, headers=publisher.auth)
    assert api.status_code == 400 and field in api.json["fields"]
    assert receiver.received == []


def test_send_test_through_the_api_takes_values_from_its_body(
    app: Flask, client: FlaskClient, publisher: Account, receiver: Receiver
) -> None:
    postback_id = hook(app, publisher, receiver.url + REAL_VALUES_URL)
    url = f"/api/v1/postbacks/{postback_id}/test"

    answer = client.post(
        url, json={"click_id": "abc", "event": "lead", "commission": 3}, headers=publisher.auth
    )
    assert answer.status_code == 200 and answer.json["ok"] is True
    assert answer.json["request"]["url"].endswith(
        "/pb?cid=abc&on=ORD-10045&amount=125.00&payout=3.00&event=lead&status=approved"
    )
    # A later change, as a real delivery of an approval sends it: #event# is what fired the postback.
    approval = client.post(url, json={"event": "approved"}, headers=publisher.auth)
    assert approval.status_code == 200 and "&event=approved&" in approval.json["request"]["url"]
    decimal = client.post(
        url, data='{"amount": 19.99}', content_type="application/json", headers=publisher.auth
    )
    assert decimal.status_code == 200 and "amount=19.99&" in decimal.json["request"]["url"]  # not a float
    assert (
        client.post(url, headers=publisher.auth)
        .json["request"]["url"]
        .endswith("cid=cl1ck-4f2a&on=ORD-10045&amount=125.00&payout=12.50&event=sale&status=approved")
    )
    refused = client.post(url, data="[1]", content_type="application/json", headers=publisher.auth)
    assert refused.status_code == 400


@pytest.fixture
def strict_app(tmp_path: Path, sqlite_url: str, redis_url: str) -> Iterator[Flask]:
    """An app as in production: no private range allowed."""
    app = create_app(app_settings(tmp_path, sqlite_url, redis_url, POSTBACK_ALLOWED_NETWORKS=""))
    Base.metadata.create_all(get_db(app).engine)
    yield app
    get_db(app).dispose()


def test_send_test_goes_through_the_ssrf_guard(
    strict_app: Flask, receiver: Receiver, clean_redis: redis.Redis
) -> None:
    owner = make_publisher(strict_app)
    # Saved before the rule existed, or a host name resolving to loopback: the guard at send time stops it.
    postback_id = hook(strict_app, owner, receiver.url + "/pb?cid=#fobs#")
    client = strict_app.test_client()
    log_in(client, owner)

    page = client.post(
        f"/portal/postbacks/{postback_id}/test", data={"csrf_token": csrf_token(client, "/portal/postbacks")}
    ).get_data(as_text=True)

    assert (
        "ssrf: 127.0.0.1 resolves to 127.0.0.1, a loopback address; postbacks only go to public ones" in page
    )
    assert receiver.received == []


NOW = datetime.now(UTC)
SINCE = (NOW - timedelta(days=10)).date().isoformat()
RECENT = NOW - timedelta(days=5)
OLD = NOW - timedelta(days=30)


def _history(app: Flask, owner: Account, times: list[datetime]) -> list[int]:
    """One sale per time, each with its first event; returns the event ids."""
    with get_db(app).session() as session:
        them = session.get(factories.Publisher, owner.id)
        shop = factories.program(session)
        return [
            factories.event(session, factories.transaction(session, them, shop, event_time=moment)).id
            for moment in times
        ]


def _deliveries(app: Flask, postback_id: int) -> list[int]:
    with get_db(app).session() as session:
        query = select(Delivery.transaction_event_id).where(Delivery.postback_id == postback_id)
        return sorted(session.scalars(query))


def test_backfill_runs_as_a_job_that_sends_each_past_transaction_once(
    app: Flask,
    portal: FlaskClient,
    publisher: Account,
    token: str,
    clean_redis: redis.Redis,
    database_url: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    old, *recent = _history(app, publisher, [OLD] + [RECENT] * 3)
    postback_id = hook(app, publisher, "https://tracker.example/pb?cid=#fobs#")
    url = f"/portal/postbacks/{postback_id}/backfill"
    worker = worker_env(database_url, redis_url, tmp_path)

    started = portal.post(
        url, data={"csrf_token": token, "since": SINCE}, headers={"Accept": "application/json"}
    )
    queued = portal.get(url).get_json()
    before_the_job = _deliveries(app, postback_id)
    work_burst(worker)
    first = portal.get(url).get_json()
    again = portal.post(url, data={"csrf_token": token, "since": SINCE}, follow_redirects=True)
    work_burst(worker)
    second = portal.get(url).get_json()

    assert started.status_code == 202 and started.get_json()["state"] == "queued"
    assert queued["state"] == "queued" and before_the_job == []  # the request only hands it over
    assert {key: first[key] for key in ("state", "total", "done", "created")} == {
        "state": "done",
        "total": 3,
        "done": 3,
        "created": 3,
    }
    assert _deliveries(app, postback_id) == recent  # the old sale is before "since"
    assert "started; its progress shows below." in again.get_data(as_text=True)
    # What it counts is events (a sale and each later status change), and the page says so.
    assert "3 of 3 events checked (each sale and each later status change)" in portal.get(
        f"/portal/postbacks/{postback_id}"
    ).get_data(as_text=True)
    assert (second["state"], second["done"], second["created"]) == ("done", 3, 0)  # never twice


def test_backfill_runs_in_the_request_when_redis_cannot_take_the_job(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(app_settings(tmp_path, database_url, dead_redis))
    Base.metadata.create_all(get_db(app).engine)
    publisher = make_publisher(app)
    _history(app, publisher, [RECENT] * 2)
    postback_id = hook(app, publisher, "https://tracker.example/pb?cid=#fobs#")
    client = app.test_client()
    log_in(client, publisher)

    answer = client.post(
        f"/portal/postbacks/{postback_id}/backfill",
        data={"csrf_token": csrf_token(client, f"/portal/postbacks/{postback_id}"), "since": SINCE},
        headers={"Accept": "application/json"},
    )

    assert answer.status_code == 200
    assert (answer.get_json()["state"], answer.get_json()["created"]) == ("done", 2)
    assert len(_deliveries(app, postback_id)) == 2
    get_db(app).dispose()


def test_backfill_skips_events_that_already_have_a_delivery(
    app: Flask, publisher: Account, clean_redis: redis.Redis
) -> None:
    first, second = _history(app, publisher, [RECENT] * 2)
    postback_id = hook(app, publisher, "https://tracker.example/pb?cid=#fobs#")
    with get_db(app).session() as session:
        event = session.get(factories.TransactionEvent, first)
        factories.delivery(session, session.get(Postback, postback_id), event)  # type: ignore[arg-type]
    since = datetime.fromisoformat(SINCE).replace(tzinfo=UTC)

    result = backfill.run(get_db(app).session_factory, clean_redis, publisher.id, postback_id, since)

    assert (result.events, result.created) == (2, 1)
    assert _deliveries(app, postback_id) == [first, second]


@pytest.mark.parametrize(
    ("since", "message"),
    [
        ("", "since: must be a date like 2026-11-01, got ''"),
        ("2999-01-01", "since: must not be in the future, got '2999-01-01'"),
        ("2001-01-01", "since: must be within the last 90 days, got '2001-01-01'"),
    ],
)
def test_backfill_names_a_bad_date(
    app: Flask, portal: FlaskClient, publisher: Account, token: str, since: str, message: str
) -> None:
    postback_id = hook(app, publisher, "https://tracker.example/pb?cid=#fobs#")

    response = portal.post(
        f"/portal/postbacks/{postback_id}/backfill",
        data={"csrf_token": token, "since": since},
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 400 and response.get_json()["error"] == message


def test_a_paused_postback_is_not_backfilled(
    app: Flask, portal: FlaskClient, publisher: Account, token: str
) -> None:
    _history(app, publisher, [RECENT])
    postback_id = hook(app, publisher, "https://tracker.example/pb?cid=#fobs#", active=False)

    response = portal.post(
        f"/portal/postbacks/{postback_id}/backfill", data={"csrf_token": token, "since": SINCE}
    )

    assert response.status_code == 400
    assert "is paused; resume it before sending past transactions" in response.get_data(as_text=True)
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_concurrent_backfills_of_one_postback_send_each_transaction_once(
    app: Flask, publisher: Account, clean_redis: redis.Redis
) -> None:
    events = _history(app, publisher, [RECENT] * 12)
    postback_id = hook(app, publisher, "https://tracker.example/pb?cid=#fobs#")
    since = datetime.fromisoformat(SINCE).replace(tzinfo=UTC)
    sessions = get_db(app).session_factory
    results: list[int] = []

    def run() -> None:
        results.append(backfill.run(sessions, clean_redis, publisher.id, postback_id, since, batch=3).created)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == 3 and sum(results) == 12
    assert _deliveries(app, postback_id) == events
