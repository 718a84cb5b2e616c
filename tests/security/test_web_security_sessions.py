"""Sessions of the portal, the support console and the advertiser portal: cookie flags, no fixation, logout
that really ends the session (a copy of the signed-in cookie replayed afterwards is nobody's), a
deactivated account's session. On SQLite and PostgreSQL: the session epoch lives in the database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from werkzeug.test import TestResponse

from app import create_app
from dispatcher import accounts
from dispatcher.db import get_db
from dispatcher.models import AdvertiserUser, Base, Publisher, StaffUser
from tests.advertiser.conftest import make_advertiser_user
from tests.conftest import app_settings
from tests.portal.conftest import PASSWORD, csrf_token, make_publisher
from tests.support.conftest import csrf_of, make_staff

COOKIE = "session"


@dataclass(frozen=True)
class Console:
    """A console (portal, support, advertiser): where to sign in and out, a page only its users see."""

    name: str
    login: str
    logout: str
    home: str
    model: type[Publisher] | type[StaffUser] | type[AdvertiserUser]

    def account(self, app: Flask) -> tuple[int, str]:
        if self.name == "advertiser":
            with get_db(app).session() as session:
                advertiser = accounts.create_advertiser(session, "Shop").advertiser
                session.commit()
                advertiser_id = advertiser.id
            user = make_advertiser_user(app, advertiser_id)
            return user.id, user.email
        made = make_publisher(app) if self.name == "portal" else make_staff(app)
        return made.id, made.email

    def token(self, client: FlaskClient, page: str | None = None) -> str:
        path = page or self.login
        return csrf_token(client, path) if self.name == "portal" else csrf_of(client, path)

    def sign_in(self, client: FlaskClient, email: str) -> TestResponse:
        data = {"email": email, "password": PASSWORD, "csrf_token": self.token(client)}
        response = client.post(self.login, data=data)
        assert response.status_code == 302, response.get_data(as_text=True)
        return response

    def sign_out(self, client: FlaskClient) -> None:
        response = client.post(self.logout, data={"csrf_token": self.token(client, self.home)})
        assert response.status_code == 302 and response.location == self.login

    def signed_in(self, client: FlaskClient) -> bool:
        response = client.get(self.home)
        assert response.status_code in (200, 302)
        return response.status_code == 200


PORTAL = Console("portal", "/portal/login", "/portal/logout", "/portal/account", Publisher)
SUPPORT = Console("support", "/support/login", "/support/logout", "/support/account", StaffUser)
ADVERTISER = Console(
    "advertiser", "/advertiser/login", "/advertiser/logout", "/advertiser/upload", AdvertiserUser
)
CONSOLES = [
    pytest.param(PORTAL, id="portal"),
    pytest.param(SUPPORT, id="support"),
    pytest.param(ADVERTISER, id="advertiser"),
]


# Login counters start at zero in every test.
pytestmark = pytest.mark.usefixtures("clean_redis")


def session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def with_cookie(app: Flask, value: str) -> FlaskClient:
    """Another browser holding a copy of a session cookie."""
    client = app.test_client()
    client.set_cookie(COOKIE, value)
    return client


@pytest.mark.parametrize("console", CONSOLES)
def test_the_session_cookie_is_httponly_samesite_lax_and_not_secure_only_over_http(
    app: Flask, console: Console
) -> None:
    _, email = console.account(app)
    client = app.test_client()

    response = console.sign_in(client, email)

    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # tests run over http, where the default is off


@pytest.mark.parametrize("console", CONSOLES)
def test_the_session_cookie_is_secure_unless_configured_off(
    tmp_path: Path, sqlite_url: str, redis_url: str, console: Console
) -> None:
    app = create_app(app_settings(tmp_path, sqlite_url, redis_url, SESSION_COOKIE_SECURE="1"))
    Base.metadata.create_all(get_db(app).engine)
    _, email = console.account(app)
    client = app.test_client()
    token = console.token(client)

    response = client.post(console.login, data={"email": email, "password": PASSWORD, "csrf_token": token})

    assert response.status_code == 302
    assert "; Secure" in response.headers["Set-Cookie"]
    get_db(app).dispose()


@pytest.mark.parametrize("console", CONSOLES)
def test_a_session_planted_before_login_does_not_carry_into_the_signed_in_one(
    app: Flask, console: Console
) -> None:
    _, email = console.account(app)
    attacker = app.test_client()
    attacker_token = console.token(attacker)  # the attacker's session, with its own CSRF secret
    with attacker.session_transaction() as session:
        session["planted"] = "by the attacker"
    planted = session_cookie(attacker)
    victim = with_cookie(app, planted)

    console.sign_in(victim, email)

    with victim.session_transaction() as session:
        assert "planted" not in session  # cleared on login, not carried over
    assert session_cookie(victim) != planted
    assert not console.signed_in(with_cookie(app, planted))  # the attacker's copy is still nobody
    # The attacker's CSRF token does not fit the victim's new session either.
    refused = victim.post(console.logout, data={"csrf_token": attacker_token})
    assert refused.status_code == 400 and console.signed_in(victim)


@pytest.mark.parametrize("console", CONSOLES)
def test_after_logout_a_copy_of_the_signed_in_cookie_no_longer_signs_in(app: Flask, console: Console) -> None:
    _, email = console.account(app)
    client = app.test_client()
    console.sign_in(client, email)
    stolen = session_cookie(client)
    assert console.signed_in(with_cookie(app, stolen))  # a copy works while the session lives

    console.sign_out(client)

    assert not console.signed_in(client)
    assert not console.signed_in(with_cookie(app, stolen))


@pytest.mark.parametrize("console", CONSOLES)
def test_logging_out_ends_the_accounts_other_sessions_too_and_a_new_login_works(
    app: Flask, console: Console
) -> None:
    _, email = console.account(app)
    laptop, phone = app.test_client(), app.test_client()
    console.sign_in(laptop, email)
    console.sign_in(phone, email)

    console.sign_out(laptop)

    assert not console.signed_in(phone)
    console.sign_in(phone, email)
    assert console.signed_in(phone)


@pytest.mark.parametrize("console", CONSOLES)
def test_a_deactivated_account_is_signed_out_on_its_next_request(app: Flask, console: Console) -> None:
    account_id, email = console.account(app)
    client = app.test_client()
    console.sign_in(client, email)
    assert console.signed_in(client)

    with get_db(app).session() as session:
        session.execute(update(console.model).where(console.model.id == account_id).values(active=False))

    assert not console.signed_in(client)
    wrong = client.post(
        console.login, data={"email": email, "password": PASSWORD, "csrf_token": console.token(client)}
    )
    assert wrong.status_code == 401  # and it cannot sign in again


def test_a_publisher_session_is_not_a_staff_session_and_the_other_way_round(app: Flask) -> None:
    _, publisher_email = PORTAL.account(app)
    _, staff_email = SUPPORT.account(app)
    publisher, staff = app.test_client(), app.test_client()

    PORTAL.sign_in(publisher, publisher_email)
    SUPPORT.sign_in(staff, staff_email)

    assert PORTAL.signed_in(publisher) and not SUPPORT.signed_in(publisher)
    assert SUPPORT.signed_in(staff) and not PORTAL.signed_in(staff)
