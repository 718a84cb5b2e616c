"""The advertiser portal's login and its transaction pages: filters, one transaction with its history, and
changing one through the ledger (postbacks fire as through the API; a wrong transition names the status)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dispatcher import account_admin
from dispatcher.advertiser import transactions
from dispatcher.db import get_db
from dispatcher.ledger import handoff
from tests.advertiser.conftest import HOOK_PATH, Shop, advertiser_log_in, csrf_of, report_sale
from tests.portal.conftest import PASSWORD, log_in, make_publisher
from tests.workers.conftest import Receiver, work_burst, worker_env

PAGES = ("/advertiser/", "/advertiser/transactions", "/advertiser/upload", "/advertiser/integration")


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_anyone_not_signed_in_to_the_advertiser_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 302
    assert response.location.startswith("/advertiser/login?next=")


def test_a_wrong_password_is_refused_and_a_right_one_signs_in(client: FlaskClient, shop: Shop) -> None:
    token = csrf_of(client, "/advertiser/login")
    wrong = client.post(
        "/advertiser/login", data={"email": shop.email, "password": "nope-nope", "csrf_token": token}
    )
    advertiser_log_in(client, shop.email)

    assert wrong.status_code == 401
    assert "Wrong email or password." in wrong.get_data(as_text=True)
    assert client.get("/advertiser/transactions").status_code == 200


def test_a_publisher_session_does_not_open_advertiser_pages_nor_the_other_way(
    app: Flask, client: FlaskClient, shop: Shop
) -> None:
    log_in(client, make_publisher(app))
    as_publisher = client.get("/advertiser/transactions")
    advertiser_log_in(client, shop.email)
    as_advertiser = client.get("/portal/postbacks")

    assert as_publisher.status_code == 302 and as_publisher.location.startswith("/advertiser/login")
    assert as_advertiser.status_code == 302 and as_advertiser.location.startswith("/portal/login")


def test_logout_ends_every_session_of_the_user(app: Flask, adv: FlaskClient, shop: Shop) -> None:
    second = app.test_client()
    advertiser_log_in(second, shop.email)

    adv.post("/advertiser/logout", data={"csrf_token": csrf_of(adv, "/advertiser/upload")})

    assert second.get("/advertiser/transactions").status_code == 302


@pytest.mark.parametrize("who", ["user", "advertiser"])
def test_deactivating_the_user_or_its_advertiser_ends_its_session_and_its_logins(
    app: Flask, adv: FlaskClient, shop: Shop, who: str
) -> None:
    with get_db(app).session() as session:
        if who == "user":
            account_admin.set_advertiser_user_active(session, shop.user_id, False)
        else:
            account_admin.set_advertiser_active(session, shop.advertiser_id, False)
        session.commit()
    fresh = app.test_client()
    token = csrf_of(fresh, "/advertiser/login")
    login = fresh.post(
        "/advertiser/login", data={"email": shop.email, "password": PASSWORD, "csrf_token": token}
    )

    assert adv.get("/advertiser/transactions").status_code == 302
    assert login.status_code == 401


def test_the_list_filters_by_order_number_and_shows_only_the_advertisers_own(
    client: FlaskClient, adv: FlaskClient, shop: Shop, other_shop: Shop
) -> None:
    mine = report_sale(client, shop, "ORD-MINE-1")
    report_sale(client, shop, "ORD-MINE-2")
    theirs = report_sale(client, other_shop, "ORD-THEIRS")

    everything = adv.get("/advertiser/transactions").get_data(as_text=True)
    one = adv.get("/advertiser/transactions?order_number=ORD-MINE-1").get_data(as_text=True)
    bad = adv.get("/advertiser/transactions?status=lost")

    assert "ORD-MINE-1" in everything and "ORD-MINE-2" in everything and "ORD-THEIRS" not in everything
    assert mine in one and "ORD-MINE-2" not in one
    assert (
        bad.status_code == 400
        and "status" in bad.get_data(as_text=True)
        and "lost" in bad.get_data(as_text=True)
    )
    assert adv.get(f"/advertiser/transactions/{theirs}").status_code == 404


def test_the_list_pages_by_keyset(
    client: FlaskClient, adv: FlaskClient, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transactions, "PAGE_SIZE", 2)
    for n in range(3):
        report_sale(client, shop, f"ORD-PAGE-{n}")

    first = adv.get("/advertiser/transactions").get_data(as_text=True)
    older = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = adv.get(older).get_data(as_text=True)

    assert "ORD-PAGE-2" in first and "ORD-PAGE-1" in first and "ORD-PAGE-0" not in first
    assert "ORD-PAGE-0" in second and "ORD-PAGE-2" not in second


def test_approving_one_fires_its_status_postback_through_a_real_worker(
    app: Flask,
    client: FlaskClient,
    adv: FlaskClient,
    shop: Shop,
    receiver: Receiver,
    redis_url: str,
    tmp_path: Path,
) -> None:
    sales_id = report_sale(client, shop, "ORD-APPROVE")
    env = worker_env(get_db(app).url, redis_url, tmp_path)
    work_burst(env)  # the sale's own postback

    done = adv.post(
        f"/advertiser/transactions/{sales_id}/status",
        data={"status": "approved", "csrf_token": csrf_of(adv, "/advertiser/upload")},
    )
    assert handoff.drain()
    work_burst(env)
    page = adv.get(f"/advertiser/transactions/{sales_id}").get_data(as_text=True)

    assert done.status_code == 302
    assert [hit.path.split("status=")[1].split("&")[0] for hit in receiver.hits(HOOK_PATH)] == [
        "pending",
        "approved",
    ]
    assert 'id="sale-status">approved<' in page
    assert "<td>approved</td>" in page  # the history's new event


def test_an_invalid_transition_names_the_current_status_and_changes_nothing(
    client: FlaskClient, adv: FlaskClient, shop: Shop
) -> None:
    sales_id = report_sale(client, shop, "ORD-DECLINE")
    token = csrf_of(adv, "/advertiser/upload")
    adv.post(f"/advertiser/transactions/{sales_id}/status", data={"status": "declined", "csrf_token": token})

    again = adv.post(
        f"/advertiser/transactions/{sales_id}/status", data={"status": "approved", "csrf_token": token}
    )

    body = again.get_data(as_text=True)
    assert again.status_code == 409
    assert "a declined transaction cannot become approved" in body
    assert "its status is declined" in body


def test_an_adjustment_changes_the_amount_and_a_bad_amount_is_named(
    client: FlaskClient, adv: FlaskClient, shop: Shop
) -> None:
    sales_id = report_sale(client, shop, "ORD-ADJUST")
    token = csrf_of(adv, "/advertiser/upload")

    bad = adv.post(
        f"/advertiser/transactions/{sales_id}/status", data={"sale_amount": "-5", "csrf_token": token}
    )
    good = adv.post(
        f"/advertiser/transactions/{sales_id}/status", data={"sale_amount": "80.00", "csrf_token": token}
    )
    api = client.get(f"/api/v1/transactions/{sales_id}", headers=shop.auth).get_json()

    assert bad.status_code == 400 and "sale_amount" in bad.get_data(as_text=True)
    assert "-5" in bad.get_data(as_text=True)
    assert good.status_code == 302
    assert (api["sale_amount"], api["commission"], api["events"][-1]["kind"]) == ("80.00", "8.00", "adjusted")


def test_a_hostile_order_number_is_shown_escaped(client: FlaskClient, adv: FlaskClient, shop: Shop) -> None:
    report_sale(client, shop, "<script>alert(1)</script>")

    page = adv.get("/advertiser/transactions").get_data(as_text=True)

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_form_without_its_csrf_token_is_refused(client: FlaskClient, adv: FlaskClient, shop: Shop) -> None:
    sales_id = report_sale(client, shop, "ORD-CSRF")

    response = adv.post(f"/advertiser/transactions/{sales_id}/status", data={"status": "approved"})

    assert response.status_code == 400
    assert client.get(f"/api/v1/transactions/{sales_id}", headers=shop.auth).get_json()["status"] == "pending"


def test_the_chosen_time_zone_shows_times_in_it(client: FlaskClient, adv: FlaskClient, shop: Shop) -> None:
    sales_id = report_sale(client, shop, "ORD-ZONE")
    token = csrf_of(adv, "/advertiser/account")

    saved = adv.post("/advertiser/account/time-zone", data={"time_zone": "Asia/Tokyo", "csrf_token": token})
    bad = adv.post("/advertiser/account/time-zone", data={"time_zone": "Mars/Base", "csrf_token": token})
    page = adv.get(f"/advertiser/transactions/{sales_id}").get_data(as_text=True)

    assert saved.status_code == 302
    assert bad.status_code == 400 and "Mars/Base" in bad.get_data(as_text=True)
    assert "+09:00" in page and " UTC" not in page.split('id="transaction-facts"')[1].split("</dl>")[0]
