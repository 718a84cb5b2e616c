"""Time zones: times are stored in UTC and shown in the zone the user chose on the account page, with its
offset; anonymous pages and accounts without a zone show UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dispatcher.db import get_db
from dispatcher.models import Publisher
from tests.dispatcher import factories
from tests.portal.conftest import Account, csrf_token


@pytest.fixture
def sale_at_late_evening(app: Flask, publisher: Account) -> None:
    with get_db(app).session() as session:
        owner = session.get(Publisher, publisher.id)
        shop = factories.program(session, name="Night Shop")
        factories.transaction(session, owner, shop, event_time=datetime(2026, 11, 30, 23, 30, tzinfo=UTC))


def choose(portal: FlaskClient, zone: str) -> int:
    return portal.post(
        "/portal/account/time-zone",
        data={"csrf_token": csrf_token(portal, "/portal/account"), "time_zone": zone},
    ).status_code


def test_times_show_in_utc_until_a_zone_is_chosen_then_in_it_with_the_offset(
    app: Flask, portal: FlaskClient, publisher: Account, sale_at_late_evening: None
) -> None:
    assert "2026-11-30 23:30:00 UTC" in portal.get("/portal/conversions").get_data(as_text=True)

    assert choose(portal, "Europe/Berlin") == 302
    page = portal.get("/portal/conversions").get_data(as_text=True)
    assert "2026-12-01 00:30:00 +01:00" in page and "23:30:00 UTC" not in page
    with get_db(app).session() as session:
        assert session.get(Publisher, publisher.id).time_zone == "Europe/Berlin"  # type: ignore[union-attr]
    assert 'value="Europe/Berlin"' in portal.get("/portal/account").get_data(as_text=True)

    assert choose(portal, "America/New_York") == 302
    assert "2026-11-30 18:30:00 -05:00" in portal.get("/portal/conversions").get_data(as_text=True)
    assert choose(portal, "") == 302  # back to UTC
    assert "2026-11-30 23:30:00 UTC" in portal.get("/portal/conversions").get_data(as_text=True)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "Europe/Berlin\x00", "x" * 100])
def test_an_unknown_zone_is_a_400_naming_the_field(
    portal: FlaskClient, publisher: Account, zone: str
) -> None:
    response = portal.post(
        "/portal/account/time-zone",
        data={"csrf_token": csrf_token(portal, "/portal/account"), "time_zone": zone},
    )
    assert response.status_code == 400
    assert "time_zone: must be a time zone name" in response.get_data(as_text=True)
