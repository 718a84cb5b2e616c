"""Bulk status changes: a confirmation with the count, a job on a real RQ worker, progress that ends at the
job's counts, skipped transactions that could not take the change, and every status postback delivered."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from dispatcher.db import get_db
from dispatcher.ledger import handoff
from dispatcher.models import AuditEntry
from tests.advertiser.conftest import HOOK_PATH, Shop, advertiser_log_in, csrf_of, report_sale
from tests.workers.conftest import Receiver, work_burst, worker_env


def _statuses(receiver: Receiver) -> list[str]:
    return sorted(hit.path.split("status=")[1].split("&")[0] for hit in receiver.hits(HOOK_PATH))


def test_approve_all_matching_runs_as_a_job_with_progress_and_skips_what_cannot_change(
    app: Flask,
    client: FlaskClient,
    adv: FlaskClient,
    shop: Shop,
    other_shop: Shop,
    receiver: Receiver,
    redis_url: str,
    tmp_path: Path,
) -> None:
    sales = [report_sale(client, shop, f"BULK-{n}") for n in range(4)]
    report_sale(client, other_shop, "BULK-THEIRS")  # another advertiser's: never counted nor changed
    token = csrf_of(adv, "/advertiser/upload")
    adv.post(f"/advertiser/transactions/{sales[0]}/status", data={"status": "declined", "csrf_token": token})
    env = worker_env(get_db(app).url, redis_url, tmp_path)
    work_burst(env)
    receiver.received.clear()

    confirm = adv.get("/advertiser/bulk?action=approved&order_number=")
    started = adv.post(
        "/advertiser/bulk", data={"action": "approved", "confirmed_count": "4", "csrf_token": token}
    )
    status_url = started.headers["Location"]
    before = adv.get(status_url, headers={"Accept": "application/json"}).get_json()
    work_burst(env)  # the bulk job, which hands the new deliveries over
    assert handoff.drain()
    work_burst(env)  # the sends
    after = adv.get(status_url, headers={"Accept": "application/json"}).get_json()
    page = adv.get(status_url).get_data(as_text=True)

    assert 'id="bulk-count">4<' in confirm.get_data(as_text=True)
    assert before == {"status": "queued", "total": 4, "done": 0, "changed": 0, "skipped": 0, "percent": 0}
    assert after == {"status": "finished", "total": 4, "done": 4, "changed": 3, "skipped": 1, "percent": 100}
    assert 'id="bulk-bar" max="100" value="100"' in page
    assert _statuses(receiver) == ["approved"] * 3
    statuses = [
        client.get(f"/api/v1/transactions/{s}", headers=shop.auth).get_json()["status"] for s in sales
    ]
    assert statuses == ["declined", "approved", "approved", "approved"]
    with get_db(app).session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "advertiser_bulk_status")).one()
        assert entry.detail["result"] == {"done": 4, "changed": 3, "skipped": 1}
        assert entry.detail["advertiser_user_id"] == shop.user_id


def test_a_count_that_changed_since_the_confirmation_is_said_and_nothing_starts(
    app: Flask, client: FlaskClient, adv: FlaskClient, shop: Shop
) -> None:
    report_sale(client, shop, "COUNT-1")
    token = csrf_of(adv, "/advertiser/upload")
    report_sale(client, shop, "COUNT-2")  # arrives after the page said 1

    response = adv.post(
        "/advertiser/bulk",
        data={"action": "approved", "status": "pending", "confirmed_count": "1", "csrf_token": token},
    )

    body = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "changed from 1 to 2" in body and 'id="bulk-count">2<' in body
    with get_db(app).session() as session:
        assert (
            session.scalars(select(AuditEntry).where(AuditEntry.action == "advertiser_bulk_status")).all()
            == []
        )


def test_a_bad_action_or_filter_is_a_400_naming_it(adv: FlaskClient) -> None:
    action = adv.get("/advertiser/bulk?action=pending")
    status = adv.get("/advertiser/bulk?action=approved&status=<b>x</b>")

    assert action.status_code == 400 and "action" in action.get_data(as_text=True)
    assert status.status_code == 400 and "&lt;b&gt;x&lt;/b&gt;" in status.get_data(as_text=True)


def test_another_advertisers_bulk_change_is_a_404(
    app: Flask, client: FlaskClient, adv: FlaskClient, shop: Shop, other_shop: Shop
) -> None:
    report_sale(client, shop, "MINE-1")
    token = csrf_of(adv, "/advertiser/upload")
    started = adv.post(
        "/advertiser/bulk", data={"action": "approved", "confirmed_count": "1", "csrf_token": token}
    )
    theirs = app.test_client()
    advertiser_log_in(theirs, other_shop.email)

    assert adv.get(started.headers["Location"]).status_code == 200
    assert theirs.get(started.headers["Location"]).status_code == 404
