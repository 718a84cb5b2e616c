"""The integration page: per program the S2S URL (token masked unless just made), pixel and tracking link;
rotating the API key and S2S token from the page, the old one working for the chosen grace period only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dispatcher.db import get_db
from dispatcher.models import Advertiser
from tests.advertiser.conftest import Shop, csrf_of

NEW_SECRET = re.compile(r'id="new-(api_key|s2s_token)">([^<]+)<')


def _rotate(adv: FlaskClient, secret: str, grace: str) -> tuple[int, str]:
    response = adv.post(
        "/advertiser/integration/rotate",
        data={"secret": secret, "grace": grace, "csrf_token": csrf_of(adv, "/advertiser/upload")},
    )
    body = response.get_data(as_text=True)
    found = NEW_SECRET.search(body)
    return response.status_code, found.group(2) if found else body


def test_the_page_shows_each_programs_formats_with_the_token_masked(adv: FlaskClient, shop: Shop) -> None:
    page = adv.get("/advertiser/integration").get_data(as_text=True)

    assert "/s2s/transaction?token=s2s_…&amp;clickid={clickid}" in page
    assert "&amp;pixel=1" in page
    assert f"/c/{shop.program_id}?pub={{publisher_id}}" in page
    assert shop.s2s_token not in page and shop.api_key not in page


def test_a_rotated_api_key_with_a_grace_period_keeps_the_old_one_until_it_ends(
    app: Flask, client: FlaskClient, adv: FlaskClient, shop: Shop
) -> None:
    status, new_key = _rotate(adv, "api_key", "1h")
    old_now = client.get("/api/v1/transactions", headers=shop.auth)
    new_now = client.get("/api/v1/transactions", headers={"Authorization": f"Bearer {new_key}"})
    with get_db(app).session() as session:
        advertiser = session.get_one(Advertiser, shop.advertiser_id)
        until = advertiser.previous_api_key_until
        assert until is not None and timedelta(minutes=59) < until - datetime.now(UTC) <= timedelta(hours=1)
        advertiser.previous_api_key_until = datetime.now(UTC) - timedelta(seconds=1)  # the hour has passed
        session.commit()
    old_later = client.get("/api/v1/transactions", headers=shop.auth)

    assert status == 200 and new_key.startswith("adv_")
    assert (old_now.status_code, new_now.status_code, old_later.status_code) == (200, 200, 401)


def test_a_rotated_s2s_token_without_grace_stops_the_old_one_and_shows_the_new_in_the_urls(
    client: FlaskClient, adv: FlaskClient, shop: Shop
) -> None:
    response = adv.post(
        "/advertiser/integration/rotate",
        data={"secret": "s2s_token", "grace": "0", "csrf_token": csrf_of(adv, "/advertiser/upload")},
    )
    page = response.get_data(as_text=True)
    new_token = NEW_SECRET.search(page).group(2)  # type: ignore[union-attr]

    old = client.get(
        "/s2s/transaction", query_string={"token": shop.s2s_token, "clickid": "x", "on": "1", "sa": "1"}
    )
    later = adv.get("/advertiser/integration").get_data(as_text=True)

    assert f"/s2s/transaction?token={new_token}&amp;" in page
    assert old.status_code == 401
    assert new_token not in later  # shown once


@pytest.mark.parametrize(
    ("secret", "grace", "field"), [("api_key", "2h", "grace"), ("password", "1h", "secret")]
)
def test_a_choice_not_offered_is_a_400_naming_it(
    adv: FlaskClient, shop: Shop, secret: str, grace: str, field: str
) -> None:
    status, body = _rotate(adv, secret, grace)

    assert status == 400 and f"{field}:" in body
