"""Staff choose the time zone the console shows times in (stored in UTC)."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.support.conftest import csrf_of


def test_staff_choose_their_own_zone(app: Flask, console: FlaskClient) -> None:
    token = csrf_of(console, "/support/account")
    assert (
        console.post(
            "/support/account/time-zone", data={"csrf_token": token, "time_zone": "Asia/Tokyo"}
        ).status_code
        == 302
    )
    page = console.get("/support/account").get_data(as_text=True)
    assert "now: Asia/Tokyo" in page
