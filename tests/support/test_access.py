"""Who may open the console: staff only. Publishers and anonymous visitors get the support login, no data."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.portal.conftest import Account, log_in, make_publisher
from tests.support.conftest import Network, Staff, csrf_of, make_staff, staff_log_in

# Every support route, with ids filled in from the network fixture (`{a}` = delivery a, ...).
PAGES = [
    "/support/",
    "/support/deliveries",
    "/support/deliveries?order_number=ORD-A",
    "/support/deliveries/{delivery}",
    "/support/transactions/{transaction}",
    "/support/sales/SALE-A",
    "/support/postbacks/{postback}",
    "/support/replays/new",
    "/support/replays/new?since=2026-11-01",
    "/support/replays/1",
    "/support/account",
    "/support/audit",
]
# What support pages show and no URL above contains: none of it may reach a publisher.
SECRETS = ("Voluum", "RedTrack", "a.example", "203.0.113.7", "ORD-B", "Publisher ")
FORMS = [
    "/support/deliveries/{delivery}/replay",
    "/support/postbacks/{postback}/pause",
    "/support/postbacks/{postback}/resume",
    "/support/replays",
    "/support/account/token",
    "/support/account/token/revoke",
]


def _fill(path: str, network: Network) -> str:
    return path.format(
        delivery=network.ids["a"], transaction=network.transactions["a"], postback=network.postbacks["hook1"]
    )


@pytest.fixture
def publisher_client(app: Flask, client: FlaskClient, support_staff: Staff) -> FlaskClient:
    owner: Account = make_publisher(app)
    log_in(client, owner)
    return client


@pytest.mark.parametrize("path", PAGES)
def test_a_publisher_session_is_sent_to_the_support_login_and_sees_no_support_data(
    publisher_client: FlaskClient, network: Network, path: str
) -> None:
    response = publisher_client.get(_fill(path, network))

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/support/login")
    body = response.get_data(as_text=True)
    assert not [secret for secret in SECRETS if secret in body]


@pytest.mark.parametrize("path", FORMS)
def test_a_publisher_session_cannot_post_any_support_form(
    publisher_client: FlaskClient, network: Network, path: str
) -> None:
    token = csrf_of(publisher_client, "/portal/account")

    response = publisher_client.post(_fill(path, network), data={"csrf_token": token, "reason": "x"})

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/support/login")


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_the_support_login(
    client: FlaskClient, network: Network, path: str
) -> None:
    response = client.get(_fill(path, network))

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/support/login")


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        ("support", "/support/", 200),
        ("support", "/support/deliveries", 200),
        ("support", "/support/audit", 200),
        ("support", "/support/account", 200),
        ("support", "/support/replays/new", 403),
        ("admin", "/support/replays/new", 200),
        ("admin", "/support/", 200),
    ],
)
def test_each_role_opens_its_pages(
    app: Flask, client: FlaskClient, support_staff: Staff, role: str, path: str, status: int
) -> None:
    staff_log_in(client, make_staff(app, role))

    assert client.get(path).status_code == status


def test_a_staff_session_does_not_open_the_publisher_portal(console: FlaskClient) -> None:
    response = console.get("/portal/postbacks")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/portal/login")


def test_staff_log_in_with_their_password_and_out_again(client: FlaskClient, support_staff: Staff) -> None:
    token = csrf_of(client, "/support/login")
    wrong = client.post(
        "/support/login", data={"email": support_staff.email, "password": "nope-nope", "csrf_token": token}
    )
    staff_log_in(client, support_staff)
    inside = client.get("/support/")
    logout = client.post("/support/logout", data={"csrf_token": csrf_of(client, "/support/account")})

    assert wrong.status_code == 401 and "Wrong email or password" in wrong.get_data(as_text=True)
    assert inside.status_code == 200 and support_staff.email in inside.get_data(as_text=True)
    assert logout.status_code == 302
    assert client.get("/support/").status_code == 302


def test_a_publisher_password_does_not_open_the_console(
    app: Flask, client: FlaskClient, support_staff: Staff
) -> None:
    owner = make_publisher(app)
    token = csrf_of(client, "/support/login")

    response = client.post(
        "/support/login",
        data={"email": owner.email, "password": "correct-horse-battery", "csrf_token": token},
    )

    assert response.status_code == 401


def test_staff_logins_are_rate_limited(client: FlaskClient, support_staff: Staff) -> None:
    token = csrf_of(client, "/support/login")
    statuses = [
        client.post(
            "/support/login",
            data={"email": support_staff.email, "password": "wrong-pass", "csrf_token": token},
        ).status_code
        for _ in range(6)
    ]

    assert statuses == [401] * 5 + [429]


def test_support_forms_need_a_csrf_token(console: FlaskClient, network: Network) -> None:
    response = console.post(f"/support/deliveries/{network.ids['a']}/replay")

    assert response.status_code == 400


def test_support_pages_send_a_csp_without_inline_script(console: FlaskClient) -> None:
    response = console.get("/support/")

    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "<script>" not in response.get_data(as_text=True)


def test_the_login_only_returns_to_console_paths(client: FlaskClient, support_staff: Staff) -> None:
    token = csrf_of(client, "/support/login")
    response = client.post(
        "/support/login",
        data={
            "email": support_staff.email,
            "password": "correct-horse-battery",
            "csrf_token": token,
            "next": "https://evil.example/",
        },
    )

    assert response.headers["Location"] == "/support/"


@pytest.mark.parametrize(
    "path",
    [
        "/support/transactions/99999999999999999999",
        "/support/deliveries/99999999999999999999",
        "/support/postbacks/99999999999999999999",
        "/support/replays/99999999999999999999",
        "/support/sales/a%00b",
        "/support/sales/" + "x" * 100,
    ],
)
def test_an_id_no_row_can_have_is_a_404_not_a_database_error(admin_console: FlaskClient, path: str) -> None:
    assert admin_console.get(path).status_code == 404


def test_a_filter_id_beyond_bigint_is_a_400_naming_it(console: FlaskClient) -> None:
    response = console.get("/support/deliveries?publisher_id=99999999999999999999")

    assert response.status_code == 400 and "publisher_id: is not an id" in response.get_data(as_text=True)
