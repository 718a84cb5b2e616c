"""Traffic sources (list, add, rename) and the personal API token (shown once, replaceable, revocable)."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.portal.conftest import Account, add_source


def test_sources_are_listed_added_and_renamed(
    app: Flask, portal: FlaskClient, publisher: Account, token: str
) -> None:
    assert "No traffic sources yet" in portal.get("/portal/sources").get_data(as_text=True)

    added = portal.post("/portal/sources", data={"csrf_token": token, "name": "Coupon site"})
    source_id = int(re.search(r"id (\d+)\)", portal.get("/portal/sources").get_data(as_text=True)).group(1))  # type: ignore[union-attr]
    renamed = portal.post(f"/portal/sources/{source_id}", data={"csrf_token": token, "name": "Coupons"})

    assert added.status_code == renamed.status_code == 302
    page = portal.get("/portal/sources").get_data(as_text=True)
    assert 'value="Coupons"' in page and "Renamed to “Coupons”." in page


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Blog", "name: is already a traffic source of this publisher, got &#39;Blog&#39;"),
        ("   ", "name: must not be empty, got &#39;   &#39;"),
    ],
)
def test_bad_source_names_are_refused_with_the_value(
    app: Flask, portal: FlaskClient, publisher: Account, token: str, name: str, message: str
) -> None:
    add_source(app, publisher, "Blog")

    response = portal.post("/portal/sources", data={"csrf_token": token, "name": name})

    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_renaming_to_a_taken_name_is_refused(
    app: Flask, portal: FlaskClient, publisher: Account, token: str
) -> None:
    add_source(app, publisher, "Blog")
    news = add_source(app, publisher, "News")

    response = portal.post(f"/portal/sources/{news}", data={"csrf_token": token, "name": "Blog"})

    assert response.status_code == 400
    assert "is already a traffic source of this publisher" in response.get_data(as_text=True)


def test_another_publishers_source_cannot_be_renamed(
    app: Flask, portal: FlaskClient, other: Account, token: str
) -> None:
    theirs = add_source(app, other, "Theirs")

    assert (
        portal.post(f"/portal/sources/{theirs}", data={"csrf_token": token, "name": "Mine"}).status_code
        == 404
    )
    assert "Theirs" not in portal.get("/portal/sources").get_data(as_text=True)


@pytest.mark.parametrize(
    "path", ["/portal/sources", "/portal/sources/1", "/portal/account/token", "/portal/account/token/revoke"]
)
def test_source_and_token_forms_need_csrf(
    app: Flask, portal: FlaskClient, publisher: Account, path: str
) -> None:
    add_source(app, publisher, "Blog")

    assert portal.post(path, data={"name": "x"}).status_code == 400


def test_a_new_token_is_shown_once_and_replaces_the_old_one(
    portal: FlaskClient, publisher: Account, token: str
) -> None:
    assert portal.get("/api/v1/postbacks", headers=publisher.auth).status_code == 200

    page = portal.post("/portal/account/token", data={"csrf_token": token}).get_data(as_text=True)
    new = re.search(r'value="(pub_[^"]+)"', page).group(1)  # type: ignore[union-attr]

    assert "it will not be shown again" in page
    assert portal.get("/api/v1/postbacks", headers=publisher.auth).status_code == 401
    assert portal.get("/api/v1/postbacks", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    again = portal.get("/portal/account").get_data(as_text=True)
    assert new not in again and "_".join(new.split("_", 2)[:2]) + "_…" in again


def test_a_revoked_token_stops_working(portal: FlaskClient, publisher: Account, token: str) -> None:
    response = portal.post("/portal/account/token/revoke", data={"csrf_token": token})

    assert response.location == "/portal/account"
    assert portal.get("/api/v1/postbacks", headers=publisher.auth).status_code == 401
    assert "No API token." in portal.get("/portal/account").get_data(as_text=True)
