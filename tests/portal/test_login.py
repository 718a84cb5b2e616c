"""Logging in and out: passwords, a rate limit on failures, safe redirects, session cookie flags, CSRF."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from tests.conftest import app_settings
from tests.portal.conftest import PASSWORD, Account, csrf_token, log_in

PAGES = [
    "/portal/",
    "/portal/postbacks",
    "/portal/postbacks/new",
    "/portal/postbacks/1",
    "/portal/sources",
    "/portal/account",
    "/portal/deliveries",
    "/portal/deliveries/1",
    "/portal/postbacks/1/backfill",
]


def login(client: FlaskClient, email: str, password: str, **extra: str) -> object:
    data = {"email": email, "password": password, "csrf_token": csrf_token(client), **extra}
    return client.post("/portal/login", data=data)


def test_a_publisher_logs_in_with_email_and_password_and_lands_on_postbacks(
    client: FlaskClient, publisher: Account
) -> None:
    response = login(client, publisher.email.upper(), PASSWORD)

    assert response.status_code == 302 and response.location == "/portal/postbacks"
    page = client.get("/portal/postbacks").get_data(as_text=True)
    assert "Log out" in page and "No postbacks yet" in page
    with client.session_transaction() as session:
        assert session["_user_id"] == f"publisher:{publisher.id}"


@pytest.mark.parametrize("email_kind", ["wrong password", "unknown email"])
def test_a_wrong_login_says_so_without_telling_which_part(
    client: FlaskClient, publisher: Account, email_kind: str
) -> None:
    email = publisher.email if email_kind == "wrong password" else "nobody@portal.test"

    response = login(client, email, "not-the-password")

    assert response.status_code == 401
    assert "Wrong email or password." in response.get_data(as_text=True)


def test_failed_logins_are_limited_per_address_and_email(
    client: FlaskClient, publisher: Account, other: Account
) -> None:
    for _ in range(5):
        assert login(client, publisher.email, "wrong-password").status_code == 401

    blocked = login(client, publisher.email, PASSWORD)

    assert blocked.status_code == 429
    assert "Too many failed logins; try again in 15 minutes." in blocked.get_data(as_text=True)
    assert int(blocked.headers["Retry-After"]) > 800
    assert login(client, other.email, PASSWORD).status_code == 302  # another email from the same address


def test_the_limit_counters_live_in_redis_and_a_success_clears_them(
    client: FlaskClient, publisher: Account, clean_redis: redis.Redis
) -> None:
    login(client, publisher.email, "wrong-password")
    assert sorted(key.decode().split(":")[2] for key in clean_redis.keys("portal:login:*")) == ["ip", "pair"]

    login(client, publisher.email, PASSWORD)

    assert [key.decode().split(":")[2] for key in clean_redis.keys("portal:login:*")] == ["ip"]


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("/portal/deliveries?state=failed", "/portal/deliveries?state=failed"),
        ("https://evil.example/", "/portal/postbacks"),
        ("//evil.example/", "/portal/postbacks"),
        ("/\\evil.example", "/portal/postbacks"),
    ],
)
def test_after_login_only_local_paths_are_followed(
    client: FlaskClient, publisher: Account, target: str, landing: str
) -> None:
    response = login(client, publisher.email, PASSWORD, next=target)

    assert response.location == landing


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(client: FlaskClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 302
    assert response.location.startswith("/portal/login?next=")


def test_a_login_without_csrf_token_is_refused(client: FlaskClient, publisher: Account) -> None:
    response = client.post("/portal/login", data={"email": publisher.email, "password": PASSWORD})

    assert response.status_code == 400
    assert "The CSRF token is missing." in response.get_data(as_text=True)


def test_logout_needs_a_post_with_csrf_and_ends_the_session(portal: FlaskClient) -> None:
    token = csrf_token(portal, "/portal/postbacks")

    assert portal.post("/portal/logout").status_code == 400
    assert portal.post("/portal/logout", data={"csrf_token": token}).location == "/portal/login"
    assert portal.get("/portal/postbacks").status_code == 302


def test_a_deactivated_publisher_is_logged_out(app: Flask, portal: FlaskClient, publisher: Account) -> None:
    from dispatcher.db import get_db
    from dispatcher.models import Publisher

    with get_db(app).session() as session:
        session.get(Publisher, publisher.id).active = False  # type: ignore[union-attr]

    assert portal.get("/portal/postbacks").status_code == 302


def test_the_session_cookie_is_httponly_and_samesite(client: FlaskClient, publisher: Account) -> None:
    response = login(client, publisher.email, PASSWORD)
    cookie = response.headers["Set-Cookie"]

    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # tests run over http


@pytest.mark.parametrize(("setting", "secure"), [(True, True), ("1", True), ("0", False)])
def test_the_secure_flag_is_configurable(
    tmp_path: Path, sqlite_url: str, redis_url: str, setting: object, secure: bool
) -> None:
    app = create_app(app_settings(tmp_path, sqlite_url, redis_url, SESSION_COOKIE_SECURE=setting))

    assert app.config["SESSION_COOKIE_SECURE"] is secure


def test_a_real_run_sets_secure_cookies_unless_configured_otherwise(
    tmp_path: Path, sqlite_url: str, redis_url: str
) -> None:
    real_run = {**app_settings(tmp_path, sqlite_url, redis_url), "TESTING": False}

    by_default = create_app(real_run)
    switched_off = create_app({**real_run, "SESSION_COOKIE_SECURE": "0"})

    assert by_default.config["SESSION_COOKIE_SECURE"] is True
    assert switched_off.config["SESSION_COOKIE_SECURE"] is False


def test_portal_pages_forbid_inline_script(portal: FlaskClient) -> None:
    page = portal.get("/portal/postbacks/new")

    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.get_data(as_text=True)
    assert page.headers["X-Frame-Options"] == "DENY"


def test_a_logged_in_publisher_skips_the_login_page(client: FlaskClient, publisher: Account) -> None:
    log_in(client, publisher)

    assert client.get("/portal/login").location == "/portal/postbacks"


ANONYMOUS_POSTS = [
    "/portal/postbacks",
    "/portal/postbacks/preview",
    "/portal/postbacks/1",
    "/portal/postbacks/1/pause",
    "/portal/postbacks/1/resume",
    "/portal/postbacks/1/delete",
    "/portal/postbacks/1/secret",
    "/portal/postbacks/1/test",
    "/portal/postbacks/1/backfill",
    "/portal/sources",
    "/portal/sources/1",
    "/portal/account/token",
    "/portal/account/token/revoke",
    "/portal/deliveries/1/replay",
]


@pytest.mark.parametrize("path", ANONYMOUS_POSTS)
def test_anonymous_form_posts_go_to_the_login_page(client: FlaskClient, path: str) -> None:
    response = client.post(path, data={"csrf_token": csrf_token(client), "url": "https://t.example/"})

    assert response.status_code == 302
    assert response.location.startswith("/portal/login?next=")
