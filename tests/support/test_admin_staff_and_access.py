"""Network administration, staff users (create with a role, deactivate, reset a password; never one's own
deactivation), and who may open the administration pages: admins only, support staff 403 on the console's
own error page, everyone else to the support login; the navigation shows "Administration" to admins only."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from dispatcher import account_admin
from dispatcher.db import get_db
from dispatcher.models import StaffUser
from tests.portal.conftest import PASSWORD, log_in, make_publisher
from tests.support.conftest import Staff, csrf_of, make_staff, staff_log_in
from tests.support.test_admin_publishers import audit_rows, count, post

PAGES = [
    "/support/admin/publishers",
    "/support/admin/publishers/new",
    "/support/admin/publishers/{publisher}",
    "/support/admin/advertisers",
    "/support/admin/advertisers/new",
    "/support/admin/programs",
    "/support/admin/programs/new",
    "/support/admin/staff",
    "/support/admin/staff/new",
    "/support/admin/staff/{staff}",
]
FORMS = [
    "/support/admin/publishers",
    "/support/admin/publishers/{publisher}",
    "/support/admin/publishers/{publisher}/active",
    "/support/admin/publishers/{publisher}/password",
    "/support/admin/publishers/{publisher}/token",
    "/support/admin/publishers/{publisher}/sources",
    "/support/admin/advertisers",
    "/support/admin/programs",
    "/support/admin/staff",
    "/support/admin/staff/{staff}/active",
    "/support/admin/staff/{staff}/password",
]


def _fill(path: str, publisher: int, staff: int) -> str:
    return path.format(publisher=publisher, staff=staff)


@pytest.mark.parametrize("path", PAGES)
def test_support_staff_get_403_on_the_consoles_error_page(
    app: Flask, console: FlaskClient, support_staff: Staff, path: str
) -> None:
    response = console.get(_fill(path, make_publisher(app).id, support_staff.id))

    body = response.get_data(as_text=True)
    assert response.status_code == 403 and "This needs the admin role." in body and "Support console" in body


@pytest.mark.parametrize("path", FORMS)
def test_support_staff_cannot_post_any_administration_form(
    app: Flask, console: FlaskClient, support_staff: Staff, path: str
) -> None:
    owner = make_publisher(app)
    before = count(app, StaffUser)

    response = post(
        console,
        _fill(path, owner.id, support_staff.id),
        name="x",
        email="x@y.example",
        password="long-enough-1",
        active="0",
        role="admin",
    )

    assert response.status_code == 403
    assert count(app, StaffUser) == before and audit_rows(app, "publisher", owner.id) == []
    assert audit_rows(app, "staff", support_staff.id) == []


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_and_publishers_are_sent_to_the_support_login(
    app: Flask, client: FlaskClient, admin: Staff, path: str
) -> None:
    owner = make_publisher(app)
    anonymous = client.get(_fill(path, owner.id, admin.id))
    log_in(client, owner)
    publisher = client.get(_fill(path, owner.id, admin.id))

    for response in (anonymous, publisher):
        assert response.status_code == 302 and response.headers["Location"].startswith("/support/login")
        assert owner.email not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", PAGES)
def test_admins_open_every_administration_page(
    app: Flask, admin_console: FlaskClient, admin: Staff, path: str
) -> None:
    assert admin_console.get(_fill(path, make_publisher(app).id, admin.id)).status_code == 200


def test_the_navigation_shows_administration_to_admins_only(
    app: Flask, client: FlaskClient, admin: Staff, support_staff: Staff
) -> None:
    staff_log_in(client, support_staff)
    as_support = client.get("/support/").get_data(as_text=True)
    admin_client = app.test_client()
    staff_log_in(admin_client, admin)
    as_admin = admin_client.get("/support/").get_data(as_text=True)

    assert ">Administration</a>" in as_admin and ">Administration</a>" not in as_support


def test_an_admin_creates_a_support_user_who_then_logs_in(
    app: Flask, admin_console: FlaskClient, admin: Staff
) -> None:
    response = post(
        admin_console, "/support/admin/staff", email="help@network.test", role="support", password=PASSWORD
    )

    assert response.status_code == 302
    with get_db(app).session() as session:
        member = session.scalars(select(StaffUser).where(StaffUser.email == "help@network.test")).one()
    assert member.role == "support"
    entry = audit_rows(app, "staff", member.id)[-1]
    assert (entry.action, entry.staff_user_id, entry.detail["role"]) == ("create", admin.id, "support")
    staff_log_in(app.test_client(), Staff(member.id, member.email, member.role))


def test_a_generated_staff_password_is_shown_once(app: Flask, admin_console: FlaskClient) -> None:
    response = post(
        admin_console, "/support/admin/staff", email="gen@network.test", role="admin", generate="on"
    )

    shown = re.search(
        r'<dt>Password</dt><dd><code class="secret">([^<]+)</code>', response.get_data(as_text=True)
    )
    assert response.status_code == 200 and shown
    with get_db(app).session() as session:
        member = session.scalars(select(StaffUser).where(StaffUser.email == "gen@network.test")).one()
    staff_log_in(app.test_client(), Staff(member.id, member.email, "admin"), password=shown.group(1))


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (
            {"email": "x@network.test", "role": "root", "password": PASSWORD},
            "role: must be one of support, admin",
        ),
        ({"email": "nobody", "role": "support", "password": PASSWORD}, "email: must be an email address"),
        (
            {"email": "x@network.test", "role": "support", "password": "1234567"},
            "password: must be at least 8",
        ),
    ],
)
def test_a_bad_staff_user_is_a_400_naming_the_field(
    app: Flask, admin_console: FlaskClient, form: dict[str, str], message: str
) -> None:
    before = count(app, StaffUser)

    response = post(admin_console, "/support/admin/staff", **form)

    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert count(app, StaffUser) == before


def test_a_deactivated_staff_user_is_signed_out_and_cannot_sign_in(
    app: Flask, admin_console: FlaskClient
) -> None:
    member = make_staff(app, "support")
    theirs = app.test_client()
    staff_log_in(theirs, member)

    response = post(admin_console, f"/support/admin/staff/{member.id}/active", active="0")

    assert response.status_code == 302
    assert theirs.get("/support/").status_code == 302
    again = app.test_client().post(
        "/support/login",
        data={
            "email": member.email,
            "password": PASSWORD,
            "csrf_token": csrf_of(app.test_client(), "/support/login"),
        },
    )
    assert again.status_code != 302
    assert audit_rows(app, "staff", member.id)[-1].action == "deactivate"


def test_an_admin_cannot_deactivate_their_own_account(
    app: Flask, admin_console: FlaskClient, admin: Staff
) -> None:
    response = post(admin_console, f"/support/admin/staff/{admin.id}/active", active="0")

    assert response.status_code == 400 and "staff_id: is your own account" in response.get_data(as_text=True)
    assert admin_console.get("/support/").status_code == 200


def test_a_staff_password_reset_ends_their_sessions(app: Flask, admin_console: FlaskClient) -> None:
    member = make_staff(app, "support")
    theirs = app.test_client()
    staff_log_in(theirs, member)

    response = post(admin_console, f"/support/admin/staff/{member.id}/password", password="another-password")

    assert response.status_code == 302 and theirs.get("/support/").status_code == 302
    staff_log_in(app.test_client(), member, password="another-password")
    assert "another-password" not in str(audit_rows(app, "staff", member.id)[-1].detail)


def test_the_audit_log_names_the_admin_for_console_changes(
    app: Flask, admin_console: FlaskClient, admin: Staff
) -> None:
    owner = make_publisher(app)

    post(admin_console, f"/support/admin/publishers/{owner.id}/active", active="0")

    log = admin_console.get("/support/audit").get_data(as_text=True)
    assert admin.email in log and "deactivate" in log and f"publisher {owner.id}" in log


def test_the_audit_log_links_changed_parties_for_admins_and_names_the_cli(
    app: Flask, admin_console: FlaskClient
) -> None:
    owner = make_publisher(app)
    with get_db(app).session() as session:
        account_admin.rotate_publisher_token(session, owner.id)  # as the CLI does: no staff user
        session.commit()

    log = admin_console.get("/support/audit").get_data(as_text=True)

    assert f'href="/support/admin/publishers/{owner.id}"' in log and "the command line" in log
