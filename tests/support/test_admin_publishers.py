"""Network administration, publishers: list and search, create (typed or generated password, the API token
shown once), edit, traffic sources, password reset, token rotation, deactivation; every change audited with
the admin's id, nothing written on bad input, hostile names escaped."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from dispatcher.db import get_db
from dispatcher.models import AuditEntry, Postback, Publisher, TrafficSource
from tests.dispatcher import factories
from tests.portal.conftest import PASSWORD, Account, add_source, log_in, make_publisher
from tests.support.conftest import HOSTILE, Staff, csrf_of

TOKEN = re.compile(r"pub_[0-9a-f]{12}_[A-Za-z0-9_-]+")


def post(client: FlaskClient, path: str, **form: Any) -> Any:
    return client.post(path, data={**form, "csrf_token": csrf_of(client, "/support/account")})


def audit_rows(app: Flask, target_type: str, target_id: int) -> list[AuditEntry]:
    with get_db(app).session() as session:
        query = select(AuditEntry).where(
            AuditEntry.target_type == target_type, AuditEntry.target_id == str(target_id)
        )
        return list(session.scalars(query.order_by(AuditEntry.id)))


def publisher_row(app: Flask, publisher_id: int) -> Publisher:
    with get_db(app).session() as session:
        row = session.get(Publisher, publisher_id)
        assert row is not None
        session.expunge(row)
        return row


def count(app: Flask, model: Any) -> int:
    with get_db(app).session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_the_list_searches_by_name_email_and_id(app: Flask, admin_console: FlaskClient) -> None:
    shoes = make_publisher(app, "Shoe Deals Blog")
    hats = make_publisher(app, "Hat Coupons")

    by_name = admin_console.get("/support/admin/publishers?q=shoe deals").get_data(as_text=True)
    by_email = admin_console.get(f"/support/admin/publishers?q={hats.email.upper()}").get_data(as_text=True)
    by_id = admin_console.get(f"/support/admin/publishers?q={shoes.id}").get_data(as_text=True)

    assert "Shoe Deals Blog" in by_name and "Hat Coupons" not in by_name
    assert "Hat Coupons" in by_email and "Shoe Deals Blog" not in by_email
    assert "Shoe Deals Blog" in by_id


def test_the_list_pages_by_id(app: Flask, admin_console: FlaskClient) -> None:
    made = [make_publisher(app, f"Pager {n:02}") for n in range(52)]

    first = admin_console.get("/support/admin/publishers?q=pager").get_data(as_text=True)
    after = re.search(r'id="next-page" href="([^"]+)"', first)
    assert after, "no next page link"
    second = admin_console.get(after.group(1).replace("&amp;", "&")).get_data(as_text=True)

    assert "Pager 00" in first and "Pager 49" in first and "Pager 50" not in first
    assert "Pager 50" in second and "Pager 51" in second and "Pager 49" not in second
    assert f"after={made[49].id}" in after.group(1)
    assert 'id="next-page"' not in second


@pytest.mark.parametrize(
    ("query", "message"),
    [("q=a%00b", "q: must not contain control characters"), ("after=abc", "after: must be a whole number")],
)
def test_a_bad_search_is_a_400_naming_the_parameter(
    admin_console: FlaskClient, query: str, message: str
) -> None:
    response = admin_console.get(f"/support/admin/publishers?{query}")

    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_an_admin_creates_a_publisher_who_then_logs_in_to_the_portal(
    app: Flask, admin_console: FlaskClient, admin: Staff
) -> None:
    response = post(
        admin_console,
        "/support/admin/publishers",
        name="Acme Media",
        email="Ops@Acme.example",
        password=PASSWORD,
    )

    body = response.get_data(as_text=True)
    token = TOKEN.search(body)
    assert response.status_code == 200 and token and "Shown once" in body
    with get_db(app).session() as session:
        created = session.scalars(select(Publisher).where(Publisher.email == "ops@acme.example")).one()
        assert created.name == "Acme Media" and token.group(0) not in (created.api_token_hash or "")
    entry = audit_rows(app, "publisher", created.id)[-1]
    assert (entry.action, entry.staff_user_id, entry.detail["via"]) == ("create", admin.id, "console")
    assert PASSWORD not in str(entry.detail) and token.group(0) not in str(entry.detail)
    portal = app.test_client()
    log_in(portal, Account(created.id, "ops@acme.example", token.group(0)))
    assert (
        portal.get("/api/v1/postbacks", headers={"Authorization": f"Bearer {token.group(0)}"}).status_code
        == 200
    )


def test_a_generated_password_is_shown_once_and_works(app: Flask, admin_console: FlaskClient) -> None:
    response = post(
        admin_console, "/support/admin/publishers", name="Gen", email="gen@pub.test", generate="on"
    )

    shown = re.search(
        r"<dt>Password</dt><dd><code class=\"secret\">([^<]+)</code>", response.get_data(as_text=True)
    )
    assert response.status_code == 200 and shown
    with get_db(app).session() as session:
        publisher_id = session.scalars(select(Publisher.id).where(Publisher.email == "gen@pub.test")).one()
    log_in(app.test_client(), Account(publisher_id, "gen@pub.test", ""), password=shown.group(1))
    again = admin_console.get(f"/support/admin/publishers/{publisher_id}").get_data(as_text=True)
    assert shown.group(1) not in again


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "", "email": "a@b.example", "password": PASSWORD}, "name: must not be empty"),
        ({"name": "A", "email": "not-an-email", "password": PASSWORD}, "email: must be an email address"),
        ({"name": "A", "email": "a@b.example", "password": "short"}, "password: must be at least 8"),
        ({"name": "A" * 201, "email": "a@b.example", "password": PASSWORD}, "name: must be at most 200"),
    ],
)
def test_a_bad_new_publisher_is_a_400_naming_the_field_and_nothing_is_written(
    app: Flask, admin_console: FlaskClient, form: dict[str, str], message: str
) -> None:
    before = count(app, Publisher), count(app, AuditEntry)

    response = post(admin_console, "/support/admin/publishers", **form)

    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert (count(app, Publisher), count(app, AuditEntry)) == before


def test_a_taken_email_is_refused_naming_it(app: Flask, admin_console: FlaskClient) -> None:
    taken = make_publisher(app)

    response = post(
        admin_console, "/support/admin/publishers", name="X", email=taken.email, password=PASSWORD
    )

    assert response.status_code == 400
    assert f"email: is already registered to a publisher, got &#39;{taken.email}&#39;" in response.get_data(
        as_text=True
    )


def test_a_hostile_name_is_shown_as_text(app: Flask, admin_console: FlaskClient) -> None:
    evil = make_publisher(app, HOSTILE)

    listing = admin_console.get("/support/admin/publishers").get_data(as_text=True)
    detail = admin_console.get(f"/support/admin/publishers/{evil.id}").get_data(as_text=True)

    assert HOSTILE not in listing and HOSTILE not in detail
    assert "&lt;script&gt;" in listing and "&lt;script&gt;" in detail


def test_an_edit_changes_name_and_email_and_audits_before_and_after(
    app: Flask, admin_console: FlaskClient, admin: Staff
) -> None:
    owner = make_publisher(app, "Old Name")

    response = post(
        admin_console, f"/support/admin/publishers/{owner.id}", name="New Name", email="new@pub.test"
    )

    assert response.status_code == 302
    row = publisher_row(app, owner.id)
    assert (row.name, row.email) == ("New Name", "new@pub.test")
    entry = audit_rows(app, "publisher", owner.id)[-1]
    assert entry.action == "edit" and entry.staff_user_id == admin.id
    assert entry.detail["changes"] == {
        "name": ["Old Name", "New Name"],
        "email": [owner.email, "new@pub.test"],
    }
    page = admin_console.get(f"/support/admin/publishers/{owner.id}").get_data(as_text=True)
    assert "name: Old Name → New Name" in page


def test_an_edit_that_changes_nothing_writes_nothing(app: Flask, admin_console: FlaskClient) -> None:
    owner = make_publisher(app, "Same")
    before = count(app, AuditEntry)

    post(admin_console, f"/support/admin/publishers/{owner.id}", name="Same", email=owner.email)

    assert count(app, AuditEntry) == before


def test_a_bad_edit_is_a_400_and_the_publisher_stays_as_it_was(
    app: Flask, admin_console: FlaskClient
) -> None:
    owner, other = make_publisher(app, "Keep"), make_publisher(app)
    before = count(app, AuditEntry)

    bad_email = post(
        admin_console, f"/support/admin/publishers/{owner.id}", name="Changed", email=other.email
    )
    bad_name = post(admin_console, f"/support/admin/publishers/{owner.id}", name="a\x00b", email=owner.email)

    assert bad_email.status_code == 400 and "email: is already registered" in bad_email.get_data(as_text=True)
    assert bad_name.status_code == 400 and "name: must not contain control characters" in bad_name.get_data(
        as_text=True
    )
    row = publisher_row(app, owner.id)
    assert (row.name, row.email, count(app, AuditEntry)) == ("Keep", owner.email, before)


def test_traffic_sources_are_added_and_renamed_and_audited(app: Flask, admin_console: FlaskClient) -> None:
    owner = make_publisher(app)

    added = post(admin_console, f"/support/admin/publishers/{owner.id}/sources", name="Coupon site")
    with get_db(app).session() as session:
        source = session.scalars(select(TrafficSource).where(TrafficSource.publisher_id == owner.id)).one()
    renamed = post(
        admin_console, f"/support/admin/publishers/{owner.id}/sources/{source.id}", name="Deals site"
    )
    duplicate = post(admin_console, f"/support/admin/publishers/{owner.id}/sources", name="Deals site")

    assert added.status_code == 302 and renamed.status_code == 302
    assert duplicate.status_code == 400 and "name: is already a traffic source" in duplicate.get_data(
        as_text=True
    )
    entries = audit_rows(app, "traffic_source", source.id)
    assert [e.action for e in entries] == ["create", "edit"]
    assert entries[1].detail["changes"] == {"name": ["Coupon site", "Deals site"]}
    assert "Deals site" in admin_console.get(f"/support/admin/publishers/{owner.id}").get_data(as_text=True)


def test_a_deactivated_traffic_source_refuses_new_clicks_until_reactivated_and_both_are_audited(
    app: Flask, admin_console: FlaskClient
) -> None:
    owner = make_publisher(app)
    source = add_source(app, owner, "Coupon site")
    with get_db(app).session() as session:
        program = factories.program(session)
        session.commit()
        program_id = program.id
    visitor = app.test_client()
    link = f"/c/{program_id}?pub={owner.id}&ts={source}"
    assert visitor.get(link).status_code == 302

    off = post(admin_console, f"/support/admin/publishers/{owner.id}/sources/{source}/active", active="0")
    refused = visitor.get(link)
    again = post(admin_console, f"/support/admin/publishers/{owner.id}/sources/{source}/active", active="0")
    bad = post(admin_console, f"/support/admin/publishers/{owner.id}/sources/{source}/active", active="maybe")
    on = post(admin_console, f"/support/admin/publishers/{owner.id}/sources/{source}/active", active="1")

    assert off.status_code == 302 and again.status_code == 302 and on.status_code == 302
    assert refused.status_code == 400 and "ts: is a deactivated traffic source" in refused.get_data(
        as_text=True
    )
    assert bad.status_code == 400 and "active: must be 1 (reactivate) or 0 (deactivate)" in bad.get_data(
        as_text=True
    )
    assert visitor.get(link).status_code == 302
    assert [e.action for e in audit_rows(app, "traffic_source", source)] == ["deactivate", "activate"]


def test_another_publishers_source_is_a_404(app: Flask, admin_console: FlaskClient) -> None:
    owner, other = make_publisher(app), make_publisher(app)
    theirs = add_source(app, other, "Theirs")

    response = post(admin_console, f"/support/admin/publishers/{owner.id}/sources/{theirs}", name="Mine now")
    off = post(admin_console, f"/support/admin/publishers/{owner.id}/sources/{theirs}/active", active="0")

    assert response.status_code == 404 and off.status_code == 404
    with get_db(app).session() as session:
        assert session.get(TrafficSource, theirs).name == "Theirs"  # type: ignore[union-attr]


def test_a_password_reset_ends_the_publishers_sessions_and_the_new_one_works(
    app: Flask, admin_console: FlaskClient
) -> None:
    owner = make_publisher(app)
    portal = app.test_client()
    log_in(portal, owner)

    response = post(
        admin_console, f"/support/admin/publishers/{owner.id}/password", password="a-new-password"
    )

    assert response.status_code == 302
    assert portal.get("/portal/postbacks").status_code == 302  # signed out
    log_in(app.test_client(), owner, password="a-new-password")
    entry = audit_rows(app, "publisher", owner.id)[-1]
    assert entry.action == "reset_password" and "a-new-password" not in str(entry.detail)


def test_a_short_password_is_refused_without_echoing_it(app: Flask, admin_console: FlaskClient) -> None:
    owner = make_publisher(app)

    response = post(admin_console, f"/support/admin/publishers/{owner.id}/password", password="tiny7")

    body = response.get_data(as_text=True)
    assert (
        response.status_code == 400
        and "password: must be at least 8 characters" in body
        and "tiny7" not in body
    )
    log_in(app.test_client(), owner)  # the old one still works


def test_rotating_the_token_shows_the_new_one_once_and_refuses_the_old(
    app: Flask, admin_console: FlaskClient
) -> None:
    owner = make_publisher(app)

    response = post(admin_console, f"/support/admin/publishers/{owner.id}/token")

    new = TOKEN.search(response.get_data(as_text=True))
    assert response.status_code == 200 and new
    api = app.test_client()
    assert api.get("/api/v1/postbacks", headers=owner.auth).status_code == 401
    assert (
        api.get("/api/v1/postbacks", headers={"Authorization": f"Bearer {new.group(0)}"}).status_code == 200
    )
    assert audit_rows(app, "publisher", owner.id)[-1].action == "rotate_api_token"


def test_deactivating_stops_the_portal_and_pauses_postbacks_and_reactivating_resumes(
    app: Flask, admin_console: FlaskClient, admin: Staff
) -> None:
    owner = make_publisher(app)
    with get_db(app).session() as session:
        session.add(
            Postback(publisher_id=owner.id, name="Voluum", url_template="https://t.example/?c=#fobs#")
        )
        session.commit()
    portal = app.test_client()
    log_in(portal, owner)

    off = post(admin_console, f"/support/admin/publishers/{owner.id}/active", active="0")
    page = admin_console.get(f"/support/admin/publishers/{owner.id}").get_data(as_text=True)

    assert off.status_code == 302 and "1 live postback(s) paused" in page and "deactivated" in page
    assert portal.get("/portal/postbacks").status_code == 302
    refused = app.test_client().get("/api/v1/postbacks", headers=owner.auth)
    assert refused.status_code == 401
    on = post(admin_console, f"/support/admin/publishers/{owner.id}/active", active="1")
    assert on.status_code == 302
    with get_db(app).session() as session:
        assert session.scalars(select(Postback.active).where(Postback.publisher_id == owner.id)).one() is True
    assert [(e.action, e.staff_user_id) for e in audit_rows(app, "publisher", owner.id)][-2:] == [
        ("deactivate", admin.id),
        ("activate", admin.id),
    ]


def test_a_bad_status_value_is_a_400_naming_it(app: Flask, admin_console: FlaskClient) -> None:
    owner = make_publisher(app)

    response = post(admin_console, f"/support/admin/publishers/{owner.id}/active", active="maybe")

    assert response.status_code == 400 and "active: must be 1" in response.get_data(as_text=True)
    assert publisher_row(app, owner.id).active is True


def test_a_missing_publisher_is_a_404(admin_console: FlaskClient) -> None:
    assert admin_console.get("/support/admin/publishers/987654321").status_code == 404
    assert post(admin_console, "/support/admin/publishers/987654321/token").status_code == 404
