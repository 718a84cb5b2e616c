"""Bulk replay from the console: a count to confirm, the engine's job on a real worker, a progress bar that
ends at the job's count, every matching delivery re-sent to a real receiver, and one audit entry."""

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
from tests.support.conftest import Staff, csrf_of
from tests.workers.conftest import Receiver, Reply, delivery_row, work_burst, worker_env


def _failed_deliveries(app: Flask, receiver: Receiver, path: str, count: int) -> tuple[int, list[int]]:
    """`count` deliveries of one new publisher to `path`; returns (publisher id, delivery ids)."""
    with get_db(app).session() as session:
        owner = factories.publisher(session)
        shop = factories.program(session)
        hook = Postback(publisher_id=owner.id, url_template=receiver.url(path + "?d=#deliveryid#"))
        session.add(hook)
        session.flush()
        ids = [
            factories.delivery(
                session, hook, factories.event(session, factories.transaction(session, owner, shop))
            ).id
            for _ in range(count)
        ]
        return owner.id, ids


def test_a_bulk_replay_resends_every_matching_failure_with_progress_and_audit(
    app: Flask,
    admin_console: FlaskClient,
    admin: Staff,
    receiver: Receiver,
    redis_client: redis.Redis,
    redis_url: str,
    tmp_path: Path,
) -> None:
    receiver.script["/mine"] = [Reply(404), Reply(404), Reply(404), Reply(200)]
    receiver.script["/theirs"] = [Reply(404)]
    publisher_id, mine = _failed_deliveries(app, receiver, "/mine", 3)
    _, theirs = _failed_deliveries(app, receiver, "/theirs", 1)
    env = worker_env(get_db(app).url, redis_url, tmp_path)
    enqueue_deliveries(redis_client, mine + theirs)
    work_burst(env)
    since = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")

    confirm = admin_console.get(f"/support/replays/new?since={since}&publisher_id={publisher_id}")
    assert 'id="replay-count">3<' in confirm.get_data(as_text=True)
    started = admin_console.post(
        "/support/replays",
        data={
            "csrf_token": csrf_of(admin_console, "/support/account"),
            "since": since,
            "publisher_id": str(publisher_id),
            "confirmed_count": "3",
        },
    )
    status_url = started.headers["Location"]
    before = admin_console.get(status_url, headers={"Accept": "application/json"}).get_json()
    work_burst(env)  # the replay job, which queues the sends
    work_burst(env)  # the sends
    after = admin_console.get(status_url, headers={"Accept": "application/json"}).get_json()
    page = admin_console.get(status_url).get_data(as_text=True)

    assert before == {"status": "queued", "total": 3, "done": 0, "reopened": None, "percent": 0}
    assert after == {"status": "finished", "total": 3, "done": 3, "reopened": 3, "percent": 100}
    assert 'id="replay-bar" max="100" value="100"' in page
    assert [delivery_row(get_db(app), i).state for i in mine] == ["succeeded"] * 3
    assert delivery_row(get_db(app), theirs[0]).state == "failed"
    assert len(receiver.hits("/mine")) == 6 and len(receiver.hits("/theirs")) == 1
    with get_db(app).session() as session:
        [entry] = session.scalars(select(AuditEntry))
        assert (entry.staff_user_id, entry.action, entry.detail["total"]) == (admin.id, "bulk_replay", 3)
        assert entry.detail["filter"]["publisher_id"] == publisher_id
        assert entry.target_id.startswith("replay-")


def test_a_changed_count_must_be_confirmed_again_and_starts_nothing(
    app: Flask, admin_console: FlaskClient, receiver: Receiver, redis_client: redis.Redis
) -> None:
    publisher_id, ids = _failed_deliveries(app, receiver, "/x", 2)
    with get_db(app).session() as session:
        for delivery_id in ids:
            row = session.get(Delivery, delivery_id)
            assert row is not None
            row.state, row.completed_at = "failed", datetime.now(UTC)

    response = admin_console.post(
        "/support/replays",
        data={
            "csrf_token": csrf_of(admin_console, "/support/account"),
            "since": "2026-01-01",
            "publisher_id": str(publisher_id),
            "confirmed_count": "1",
        },
    )

    assert response.status_code == 409
    assert 'id="replay-count">2<' in response.get_data(as_text=True)
    assert redis_client.keys("rq:job:replay-*") == []
    with get_db(app).session() as session:
        assert list(session.scalars(select(AuditEntry))) == []


def test_the_bulk_form_names_a_bad_value_and_needs_since(admin_console: FlaskClient) -> None:
    bad = admin_console.get("/support/replays/new?since=2026-01-01&status_code=abc")
    empty = admin_console.get("/support/replays/new")
    nothing = admin_console.get("/support/replays/new?since=2026-01-01")

    assert bad.status_code == 400 and "status_code: must be an HTTP status code" in bad.get_data(as_text=True)
    assert empty.status_code == 200 and "replay-count" not in empty.get_data(as_text=True)
    assert "No failed delivery matches" in nothing.get_data(as_text=True)


def test_support_staff_cannot_start_a_bulk_replay(console: FlaskClient) -> None:
    token = csrf_of(console, "/support/account")

    response = console.post("/support/replays", data={"csrf_token": token, "since": "2026-01-01"})

    assert response.status_code == 403
    page = response.get_data(as_text=True)  # in the console's shell, not the public one
    assert 'class="brand" href="/support/"' in page and "Publisher login" not in page
    assert "<title>403 Forbidden · Postback Dispatcher</title>" in page


def test_a_search_for_another_state_cannot_become_a_bulk_replay(admin_console: FlaskClient) -> None:
    response = admin_console.get("/support/replays/new?since=2026-11-01&state=pending")

    assert response.status_code == 400
    assert "state: bulk replay re-sends failed deliveries only" in response.get_data(as_text=True)
    assert "replay-count" not in response.get_data(as_text=True)


def _two_failed_sales(app: Flask) -> dict[str, str]:
    """Two failed deliveries that differ in every sale and click value; returns the first one's values."""
    values: dict[str, str] = {}
    with get_db(app).session() as session:
        owner = factories.publisher(session)
        hook = factories.postback(session, owner)
        for n in (1, 2):
            shop = factories.program(session)
            click = factories.click(session, owner, shop, fobs=f"sub-{n}")
            sale = factories.transaction(session, owner, shop, order_number=f"ORD-{n}", click_pk=click.id)
            factories.delivery(
                session, hook, factories.event(session, sale), state="failed", completed_at=datetime.now(UTC)
            )
            if n == 1:
                values = {
                    "order_number": sale.order_number,
                    "sales_id": sale.sales_id,
                    "click_id": click.click_id,
                    "sub_id": "sub-1",
                    "program_id": str(shop.id),
                    "advertiser_id": str(shop.advertiser_id),
                }
    return values


@pytest.mark.parametrize(
    "field", ["order_number", "sales_id", "click_id", "sub_id", "program_id", "advertiser_id"]
)
def test_a_bulk_replay_narrows_by_every_sale_and_click_filter_of_the_search(
    app: Flask, admin_console: FlaskClient, field: str
) -> None:
    first = _two_failed_sales(app)

    narrowed = admin_console.get(f"/support/replays/new?since=2026-01-01&{field}={first[field]}")
    everything = admin_console.get("/support/replays/new?since=2026-01-01")

    assert 'id="replay-count">1<' in narrowed.get_data(as_text=True)
    assert 'id="replay-count">2<' in everything.get_data(as_text=True)


def test_a_bulk_replay_narrows_by_when_the_deliveries_were_created(
    app: Flask, admin_console: FlaskClient
) -> None:
    _two_failed_sales(app)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()

    later = admin_console.get(f"/support/replays/new?since=2026-01-01&from={tomorrow}")
    until = admin_console.get(f"/support/replays/new?since=2026-01-01&to={tomorrow}")

    assert "No failed delivery matches" in later.get_data(as_text=True)
    assert 'id="replay-count">2<' in until.get_data(as_text=True)


def test_the_search_pages_failed_filter_carries_over_to_the_bulk_form(admin_console: FlaskClient) -> None:
    response = admin_console.get("/support/replays/new?since=2026-11-01&state=failed&publisher_id=7")

    assert response.status_code == 200 and "No failed delivery matches" in response.get_data(as_text=True)


def test_a_bulk_replay_by_bare_host_counts_the_host_on_every_port(
    app: Flask, admin_console: FlaskClient
) -> None:
    with get_db(app).session() as session:
        owner, shop = factories.publisher(session), factories.program(session)
        hook = factories.postback(session, owner)
        for host in ("hooks.example", "hooks.example:8443", "hooks.example.evil", "other.example"):
            sale = factories.transaction(session, owner, shop)
            factories.delivery(
                session,
                hook,
                factories.event(session, sale),
                state="failed",
                completed_at=datetime.now(UTC),
                destination_host=host,
            )

    bare = admin_console.get("/support/replays/new?since=2026-01-01&destination_host=Hooks.Example")
    with_port = admin_console.get("/support/replays/new?since=2026-01-01&destination_host=hooks.example:8443")

    assert 'id="replay-count">2<' in bare.get_data(as_text=True)
    assert 'id="replay-count">1<' in with_port.get_data(as_text=True)
