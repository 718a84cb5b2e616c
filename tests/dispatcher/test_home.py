"""The front page and its neighbours: where each audience signs in, the icon every browser asks for."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_the_favicon_is_served_and_every_page_names_it(client: FlaskClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert icon.get_data(as_text=True).startswith("<svg")
    assert 'rel="icon"' in client.get("/").get_data(as_text=True)
    assert 'rel="icon"' in client.get("/support/login").get_data(as_text=True)


def test_the_front_page_leads_each_audience_to_its_sign_in(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    for login in ("/portal/login", "/advertiser/login", "/support/login"):
        assert f'href="{login}"' in page
        assert client.get(login).status_code == 200
