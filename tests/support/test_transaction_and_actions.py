"""The transaction view (click, events, deliveries, every attempt, hostile answers escaped), replay of one
delivery through a real worker to a real receiver, pause and resume, and the audit entry of each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from dispatcher.db import get_db
from dispatcher.models import AuditEntry, Delivery, Postback
from dispatcher.queueing import enqueue_deliveries
from tests.dispatcher import factories
from tests.support.conftest import HOSTILE, Network, Staff
from tests.workers.conftest import Receiver, Reply, attempt_rows, make_delivery, work_burst, worker_env


def _audit(app: Flask) -> list[AuditEntry]:
    with get_db(app).session() as session:
        rows = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        session.expunge_all()
        return rows


def test_the_transaction_view_shows_click_events_deliveries_and_every_attempt(
    console: FlaskClient, network: Network
) -> None:
    page = console.get(f"/support/transactions/{network.transactions['a']}").get_data(as_text=True)

    for shown in (
        "SALE-A",
        "ORD-A",
        "CLICK-A",
        "sub-a",  # transaction and click with its sub ids
        "100.00 USD",
        "commission 10.00",  # amounts
        f"Delivery #{network.ids['a']}",
        "Voluum",  # the delivery and its postback
        "http://a.example/pb?order=ORD-A",  # the request as sent
        "User-Agent: PostbackDispatcher/1",  # request headers
        "203.0.113.7",
        "120 ms",
        "404",
        "http_status: Not Found",  # address, duration, status, error
    ):
        assert shown in page, shown


def test_hostile_answers_and_headers_are_shown_as_text(console: FlaskClient, network: Network) -> None:
    page = console.get(f"/support/transactions/{network.transactions['a']}").get_data(as_text=True)

    assert HOSTILE not in page
    assert page.count("&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;") == 2  # body and header


def test_a_delivery_or_sales_id_leads_to_its_transaction(console: FlaskClient, network: Network) -> None:
    by_delivery = console.get(f"/support/deliveries/{network.ids['c']}")
    by_sale = console.get("/support/sales/SALE-C")

    target = f"/support/transactions/{network.transactions['c']}"
    assert by_delivery.headers["Location"] == f"{target}#delivery-{network.ids['c']}"
    assert by_sale.headers["Location"] == target
    assert console.get("/support/transactions/999999").status_code == 404
    assert console.get("/support/sales/nope").status_code == 404


def test_a_delivery_held_behind_an_earlier_event_says_which_one_holds_it(
    app: Flask, console: FlaskClient
) -> None:
    # The sale's delivery is retrying; the approval's and the reversal's wait their turn behind it (the
    # engine's order), their own next attempt long past. Another postback's delivery is held by nothing.
    past = datetime.now(UTC) - timedelta(minutes=5)
    with get_db(app).session() as session:
        owner = factories.publisher(session)
        shop = factories.program(session)
        sale = factories.transaction(session, owner, shop)
        hook, other_hook = factories.postback(session, owner), factories.postback(session, owner)
        created, approved, reversed_ = (
            factories.event(session, sale, kind) for kind in ("created", "approved", "reversed")
        )
        first = factories.delivery(
            session, hook, created, attempt_count=2, next_attempt_at=past + timedelta(hours=1)
        )
        second = factories.delivery(session, hook, approved, next_attempt_at=past)
        third = factories.delivery(session, hook, reversed_, next_attempt_at=past)
        alone = factories.delivery(session, other_hook, approved, next_attempt_at=past)
        ids = (sale.id, first.id, second.id, third.id, alone.id)
        session.commit()
    sale_id, first_id, second_id, third_id, alone_id = ids

    page = console.get(f"/support/transactions/{sale_id}").get_data(as_text=True)

    def card(delivery_id: int) -> str:
        return page.split(f'id="delivery-{delivery_id}"', 1)[1].split("</section>", 1)[0]

    for held in (second_id, third_id):
        assert f'Waiting its turn behind <a href="#delivery-{first_id}">delivery #{first_id}</a>' in card(
            held
        )
        assert "Next attempt" not in card(held)
    for free in (first_id, alone_id):
        assert "Waiting its turn" not in card(free) and "Next attempt" in card(free)


def test_a_pending_delivery_is_not_replayed_and_nothing_is_audited(
    app: Flask, console: FlaskClient, csrf: str, network: Network
) -> None:
    response = console.post(
        f"/support/deliveries/{network.ids['d']}/replay", data={"csrf_token": csrf}, follow_redirects=True
    )

    assert "Not replayed" in response.get_data(as_text=True)
    assert _audit(app) == []


def test_replay_sends_a_failed_delivery_again_through_a_real_worker_and_the_page_shows_the_new_attempt(
    app: Flask,
    console: FlaskClient,
    csrf: str,
    support_staff: Staff,
    receiver: Receiver,
    redis_client: redis.Redis,
    redis_url: str,
    tmp_path: Path,
) -> None:
    database = get_db(app)
    receiver.script["/pb"] = [Reply(404, body=b"<b>no such click</b>"), Reply(200, body=b"ok")]
    delivery_id, _ = make_delivery(database, receiver.url("/pb?n=#attempt#"))
    env = worker_env(database.url, redis_url, tmp_path)
    enqueue_deliveries(redis_client, [delivery_id])
    work_burst(env)
    assert [a.outcome for a in attempt_rows(database, delivery_id)] == ["failed"]

    replayed = console.post(f"/support/deliveries/{delivery_id}/replay", data={"csrf_token": csrf})
    work_burst(env)
    page = console.get(replayed.headers["Location"]).get_data(as_text=True)

    assert [hit.path for hit in receiver.hits("/pb")] == ["/pb?n=1", "/pb?n=2"]
    assert [a.outcome for a in attempt_rows(database, delivery_id)] == ["failed", "succeeded"]
    assert f"attempt-{delivery_id}-2" in page and "&lt;b&gt;no such click&lt;/b&gt;" in page
    # Its message is in the delivery's card, where the page opens (#delivery-N), not at the top out of view.
    assert replayed.headers["Location"].endswith(f"?replayed={delivery_id}#delivery-{delivery_id}")
    card = page.split(f'id="delivery-{delivery_id}"', 1)[1]
    assert "will be sent again" in card.split("</section>", 1)[0]
    assert "will be sent again" not in page.split(f'id="delivery-{delivery_id}"', 1)[0]
    [entry] = _audit(app)
    assert (entry.staff_user_id, entry.action, entry.target_type, entry.target_id) == (
        support_staff.id,
        "replay",
        "delivery",
        str(delivery_id),
    )
    assert entry.detail["attempts_before"] == 1
    assert f"replay by {support_staff.email}" in page


def test_pausing_needs_a_reason_and_is_audited_with_it(
    app: Flask, console: FlaskClient, csrf: str, support_staff: Staff, network: Network
) -> None:
    hook = network.postbacks["hook1"]
    refused = console.post(f"/support/postbacks/{hook}/pause", data={"csrf_token": csrf, "reason": "  "})
    paused = console.post(
        f"/support/postbacks/{hook}/pause", data={"csrf_token": csrf, "reason": "Tracker answers 404 to all"}
    )

    assert refused.status_code == 400 and "reason: is required" in refused.get_data(as_text=True)
    assert paused.status_code == 302
    with get_db(app).session() as session:
        row = session.get(Postback, hook)
        assert row is not None
        assert (row.active, row.paused_reason) == (False, "Paused by support: Tracker answers 404 to all")
    [entry] = _audit(app)
    assert (entry.staff_user_id, entry.action, entry.target_id) == (support_staff.id, "pause", str(hook))
    assert entry.detail == {"reason": "Tracker answers 404 to all"}


def test_a_paused_postback_is_listed_on_the_dashboard_and_resumed_from_there(
    app: Flask, console: FlaskClient, csrf: str, network: Network
) -> None:
    hook = network.postbacks["hook2"]
    console.post(f"/support/postbacks/{hook}/pause", data={"csrf_token": csrf, "reason": "Endpoint gone"})
    listed = console.get("/support/").get_data(as_text=True)

    resumed = console.post(
        f"/support/postbacks/{hook}/resume", data={"csrf_token": csrf, "back": "dashboard"}
    )

    assert "Paused by support: Endpoint gone" in listed.split('id="paused"')[1]
    assert resumed.headers["Location"] == "/support/"
    with get_db(app).session() as session:
        row = session.get(Postback, hook)
        assert row is not None and row.active and row.paused_reason is None
    assert [(e.action, e.detail.get("paused_reason")) for e in _audit(app)] == [
        ("pause", None),
        ("resume", "Paused by support: Endpoint gone"),
    ]


def test_a_failed_action_writes_no_audit_entry(
    app: Flask, console: FlaskClient, csrf: str, network: Network
) -> None:
    console.post(f"/support/postbacks/{network.postbacks['hook1']}/resume", data={"csrf_token": csrf})

    assert _audit(app) == []


def test_the_audit_log_page_lists_who_did_what(
    console: FlaskClient, csrf: str, support_staff: Staff, network: Network
) -> None:
    console.post(f"/support/deliveries/{network.ids['a']}/replay", data={"csrf_token": csrf})

    page = console.get("/support/audit").get_data(as_text=True)

    assert support_staff.email in page and f"delivery {network.ids['a']}" in page


def test_a_replay_reopens_the_delivery_in_the_same_transaction_as_its_audit_entry(
    app: Flask, console: FlaskClient, csrf: str, network: Network
) -> None:
    console.post(f"/support/deliveries/{network.ids['c']}/replay", data={"csrf_token": csrf})

    with get_db(app).session() as session:
        delivery = session.get(Delivery, network.ids["c"])
        assert delivery is not None and delivery.state == "pending"
    assert [e.target_id for e in _audit(app)] == [str(network.ids["c"])]


def test_staff_api_tokens_are_made_shown_once_and_revoked_with_audit(
    app: Flask, console: FlaskClient, csrf: str
) -> None:
    made = console.post("/support/account/token", data={"csrf_token": csrf}).get_data(as_text=True)
    again = console.get("/support/account").get_data(as_text=True)
    console.post("/support/account/token/revoke", data={"csrf_token": csrf})

    token = made.split('id="new-token">')[1].split("<")[0]
    assert token.startswith("stf_") and token not in again
    assert [e.action for e in _audit(app)] == ["issue_api_token", "revoke_api_token"]


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_a_reason_with_control_characters_is_refused_naming_it(
    app: Flask, console: FlaskClient, csrf: str, network: Network, action: str
) -> None:
    hook = network.postbacks["hook1"]
    if action == "resume":
        console.post(f"/support/postbacks/{hook}/pause", data={"csrf_token": csrf, "reason": "first"})

    response = console.post(
        f"/support/postbacks/{hook}/{action}", data={"csrf_token": csrf, "reason": "a\x00b"}
    )

    assert response.status_code == 400 and "reason: must not contain control characters" in response.get_data(
        as_text=True
    )
    assert len(_audit(app)) == (1 if action == "resume" else 0)
