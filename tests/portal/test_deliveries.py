"""My deliveries: the log with filters, one delivery with its attempts (hostile answers escaped), the
failing/paused banner, replay; and the same through the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from dispatcher.db import get_db
from dispatcher.models import Attempt, Delivery
from tests.dispatcher import factories
from tests.portal.conftest import Account

HOSTILE = "<script>alert('x')</script>"


@dataclass(frozen=True)
class Log:
    postback: int
    other_postback: int
    failed: int
    succeeded: int
    pending: int


@pytest.fixture
def log(app: Flask, publisher: Account) -> Log:
    """Three deliveries of two postbacks: one failed (with two attempts), one succeeded, one pending."""
    with get_db(app).session() as session:
        owner = session.get(factories.Publisher, publisher.id)
        hook = factories.postback(session, owner, name="Voluum")
        second = factories.postback(session, owner, name="Backup")
        shop = factories.program(session)
        click = factories.click(session, owner, shop, fobs="sub-abc")
        made = []
        for order, state, target in [
            ("A-1", "failed", hook),
            ("B-2", "succeeded", hook),
            ("C-3", "pending", second),
        ]:
            sale = factories.transaction(
                session, owner, shop, order_number=order, click_pk=click.id if order == "A-1" else None
            )
            made.append(
                factories.delivery(
                    session,
                    target,
                    factories.event(session, sale),
                    state=state,
                    attempt_count={"failed": 2, "succeeded": 1}.get(state, 0),
                    last_status_code=500 if state == "failed" else None,
                )
            )
        for number in (1, 2):
            session.add(
                Attempt(
                    delivery_id=made[0].id,
                    number=number,
                    outcome="retry" if number == 1 else "failed",
                    method="GET",
                    url=f"https://tracker.example/pb?cid=sub-abc&try={number}",
                    status_code=500,
                    duration_ms=12,
                    resolved_ip="203.0.113.7",
                    response_excerpt=HOSTILE,
                    started_at=datetime(2026, 11, 20, 10, number, tzinfo=UTC),
                )
            )
        return Log(hook.id, second.id, made[0].id, made[1].id, made[2].id)


def ids_on(page: str, log: Log) -> list[int]:
    shown = [d for d in (log.failed, log.succeeded, log.pending) if f">#{d}</a>" in page]
    return sorted(shown, key=lambda d: page.index(f">#{d}</a>"))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["pending", "succeeded", "failed"]),
        ({"state": "failed"}, ["failed"]),
        ({"order_number": "B-2"}, ["succeeded"]),
        ({"sub_id": "sub-abc"}, ["failed"]),
        ({"postback_id": "second"}, ["pending"]),
        ({"from": "2000-01-01", "to": "2000-01-02"}, []),
    ],
)
def test_the_log_filters_by_postback_status_date_order_and_sub_id(
    portal: FlaskClient, log: Log, query: dict[str, str], expected: list[str]
) -> None:
    if query.get("postback_id") == "second":
        query = {"postback_id": str(log.other_postback)}

    page = portal.get("/portal/deliveries", query_string=query).get_data(as_text=True)

    by_name = {"failed": log.failed, "succeeded": log.succeeded, "pending": log.pending}
    assert ids_on(page, log) == sorted((by_name[name] for name in expected), reverse=True)
    if not expected:
        assert "No deliveries match these filters." in page


def test_a_bad_filter_is_named(portal: FlaskClient, log: Log) -> None:
    response = portal.get("/portal/deliveries", query_string={"from": "yesterday"})

    assert response.status_code == 400
    assert "from: must be a date like 2026-11-01, got &#39;yesterday&#39;" in response.get_data(as_text=True)


def test_the_log_has_a_banner_for_failing_and_paused_postbacks(
    app: Flask, portal: FlaskClient, log: Log
) -> None:
    from dispatcher.models import Postback

    with get_db(app).session() as session:
        session.get(Postback, log.other_postback).active = False  # type: ignore[union-attr]
        session.get(Postback, log.other_postback).paused_reason = "410 Gone from the receiver"  # type: ignore[union-attr]

    page = portal.get("/portal/deliveries").get_data(as_text=True)

    assert 'id="trouble-banner"' in page
    assert "Backup</a>\n    is paused: 410 Gone from the receiver." in page
    assert "Voluum</a>\n    is failing" not in page  # its latest tried delivery succeeded


def test_an_empty_log_says_what_will_appear(portal: FlaskClient) -> None:
    page = portal.get("/portal/deliveries").get_data(as_text=True)

    assert "No deliveries yet." in page and "trouble-banner" not in page


def test_a_delivery_shows_every_attempt_with_the_answer_escaped(portal: FlaskClient, log: Log) -> None:
    page = portal.get(f"/portal/deliveries/{log.failed}").get_data(as_text=True)

    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert page.count("203.0.113.7") == 2 and "order <code>A-1</code>" in page
    # The request as last sent: the last attempt's
    last = "https://tracker.example/pb?cid=sub-abc&amp;try=2"
    assert f'<span class="method">GET</span> <code>{last}</code>' in page


def test_replay_reopens_a_failed_delivery_and_queues_it(
    app: Flask, portal: FlaskClient, token: str, log: Log, clean_redis: redis.Redis
) -> None:
    response = portal.post(f"/portal/deliveries/{log.failed}/replay", data={"csrf_token": token})

    assert response.location == f"/portal/deliveries/{log.failed}"
    assert f"Delivery {log.failed} will be sent again in a moment." in portal.get(response.location).get_data(
        as_text=True
    )
    with get_db(app).session() as session:
        delivery = session.get(Delivery, log.failed)
        assert (delivery.state, delivery.replayed_after_attempts) == ("pending", 2)  # type: ignore[union-attr]
    assert clean_redis.llen("rq:queue:postbacks-retry") == 1


def test_a_pending_delivery_is_not_replayed(portal: FlaskClient, token: str, log: Log) -> None:
    response = portal.post(
        f"/portal/deliveries/{log.pending}/replay", data={"csrf_token": token}, follow_redirects=True
    )

    assert "is still pending: it will be sent without a replay" in response.get_data(as_text=True)


def test_delivery_pages_of_another_publisher_are_not_found(
    app: Flask, portal: FlaskClient, token: str, other: Account
) -> None:
    with get_db(app).session() as session:
        them = session.get(factories.Publisher, other.id)
        sale = factories.transaction(session, them, factories.program(session))
        theirs = factories.delivery(
            session, factories.postback(session, them), factories.event(session, sale), state="failed"
        ).id

    assert portal.get(f"/portal/deliveries/{theirs}").status_code == 404
    assert portal.post(f"/portal/deliveries/{theirs}/replay", data={"csrf_token": token}).status_code == 404
    assert f"#{theirs}<" not in portal.get("/portal/deliveries").get_data(as_text=True)


def test_replay_needs_csrf(portal: FlaskClient, log: Log) -> None:
    assert portal.post(f"/portal/deliveries/{log.failed}/replay").status_code == 400


def test_the_api_lists_filters_and_pages_deliveries(
    client: FlaskClient, publisher: Account, log: Log
) -> None:
    everything = client.get("/api/v1/deliveries", headers=publisher.auth).get_json()
    failed = client.get("/api/v1/deliveries?state=failed", headers=publisher.auth).get_json()
    older = client.get(f"/api/v1/deliveries?before={log.pending}", headers=publisher.auth).get_json()

    assert [row["id"] for row in everything["deliveries"]] == [log.pending, log.succeeded, log.failed]
    assert everything["next_before"] is None
    (row,) = failed["deliveries"]
    assert (row["order_number"], row["sub_id"], row["event"], row["state"]) == (
        "A-1",
        "sub-abc",
        "sale",
        "failed",
    )
    assert [row["id"] for row in older["deliveries"]] == [log.succeeded, log.failed]
    # Each row's request is its last attempt's; one never attempted has none.
    sent = {row["id"]: (row["method"], row["url"], row["body"]) for row in everything["deliveries"]}
    assert sent == {
        log.failed: ("GET", "https://tracker.example/pb?cid=sub-abc&try=2", None),
        log.succeeded: (None, None, None),
        log.pending: (None, None, None),
    }


def test_the_api_shows_a_delivery_with_its_attempts(
    client: FlaskClient, publisher: Account, log: Log
) -> None:
    body = client.get(f"/api/v1/deliveries/{log.failed}", headers=publisher.auth).get_json()

    assert [(a["number"], a["outcome"], a["status_code"]) for a in body["attempts"]] == [
        (1, "retry", 500),
        (2, "failed", 500),
    ]
    assert body["attempts"][0]["response_excerpt"] == HOSTILE
    assert body["attempts"][0]["started_at"] == "2026-11-20T10:01:00Z"
    assert (body["method"], body["url"]) == ("GET", "https://tracker.example/pb?cid=sub-abc&try=2")


def test_the_api_replays_and_refuses_a_pending_delivery(
    client: FlaskClient, publisher: Account, log: Log
) -> None:
    replayed = client.post(f"/api/v1/deliveries/{log.failed}/replay", headers=publisher.auth)
    refused = client.post(f"/api/v1/deliveries/{log.pending}/replay", headers=publisher.auth)

    assert replayed.status_code == 200 and replayed.get_json()["delivery"]["state"] == "pending"
    assert refused.status_code == 409
    assert refused.get_json() == {
        "error": f"Not replayed: delivery {log.pending} is still pending: it will be sent without a replay.",
        "fields": {},
    }


def test_a_bad_api_filter_is_a_400_naming_it(client: FlaskClient, publisher: Account) -> None:
    response = client.get("/api/v1/deliveries?state=lost", headers=publisher.auth)

    assert response.status_code == 400
    assert response.get_json() == {
        "error": "state: must be one of pending, succeeded, failed, got 'lost'",
        "fields": {"state": "must be one of pending, succeeded, failed"},
    }
