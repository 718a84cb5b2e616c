"""Network administration, advertisers and programs: create (secrets shown once), rename, rotate the key or
S2S token with a grace period, deactivate; programs created and edited with the CLI's validation, the
commission change applying to new sales, the currency fixed once there are sales; all audited."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from dispatcher import accounts
from dispatcher.db import get_db
from dispatcher.models import Advertiser, AuditEntry, Program, Transaction
from tests.portal.conftest import add_source, make_publisher
from tests.support.conftest import Staff
from tests.support.test_admin_publishers import audit_rows, count, post

KEY = re.compile(r"adv_[0-9a-f]{12}_[A-Za-z0-9_-]+")
S2S = re.compile(r"s2s_[0-9a-f]{12}_[A-Za-z0-9_-]+")


def make_advertiser(app: Flask, name: str = "Shoe Shop") -> accounts.CreatedAdvertiser:
    with get_db(app).session() as session:
        created = accounts.create_advertiser(session, name)
        session.commit()
        return created


def make_program(app: Flask, advertiser_id: int, **terms: Any) -> int:
    with get_db(app).session() as session:
        program = accounts.create_program(
            session,
            advertiser_id,
            terms.pop("name", "Shoes US"),
            landing_url=terms.pop("landing_url", "https://shop.example/?ref={clickid}"),
            commission=terms.pop("commission", "10%"),
            **terms,
        )
        session.commit()
        return program.id


def program_row(app: Flask, program_id: int) -> Program:
    with get_db(app).session() as session:
        row = session.get(Program, program_id)
        assert row is not None
        session.expunge(row)
        return row


def sale(app: Flask, key: str, program_id: int, order: str, amount: str = "100.00") -> Any:
    """A clickless sale (the program allows it) by the advertiser's API."""
    publisher = make_publisher(app)
    source = add_source(app, publisher, "Blog")
    report = {"order_number": order, "sale_amount": amount, "program_id": program_id}
    return app.test_client().post(
        "/api/v1/transactions",
        json={**report, "publisher_id": publisher.id, "traffic_source_id": source},
        headers={"Authorization": f"Bearer {key}"},
    )


def click(app: Flask, program_id: int) -> Any:
    publisher = make_publisher(app)
    source = add_source(app, publisher, "Blog")
    return app.test_client().get(f"/c/{program_id}?pub={publisher.id}&ts={source}")


def test_a_new_advertiser_gets_its_key_and_token_shown_once(
    app: Flask, admin_console: FlaskClient, admin: Staff
) -> None:
    response = post(admin_console, "/support/admin/advertisers", name="Hat Shop")

    body = response.get_data(as_text=True)
    key, token = KEY.search(body), S2S.search(body)
    assert response.status_code == 200 and key and token
    with get_db(app).session() as session:
        created = session.scalars(select(Advertiser).where(Advertiser.name == "Hat Shop")).one()
    later = admin_console.get(f"/support/admin/advertisers/{created.id}").get_data(as_text=True)
    assert key.group(0) not in later and token.group(0) not in later
    entry = audit_rows(app, "advertiser", created.id)[-1]
    assert (entry.action, entry.staff_user_id) == ("create", admin.id)
    assert key.group(0) not in str(entry.detail)


def test_an_empty_advertiser_name_is_refused_naming_it(app: Flask, admin_console: FlaskClient) -> None:
    before = count(app, Advertiser)

    response = post(admin_console, "/support/admin/advertisers", name="   ")

    assert response.status_code == 400 and "name: must not be empty" in response.get_data(as_text=True)
    assert count(app, Advertiser) == before


def test_an_advertiser_is_renamed_and_found_by_its_new_name(app: Flask, admin_console: FlaskClient) -> None:
    shop = make_advertiser(app, "Old Shop")

    post(admin_console, f"/support/admin/advertisers/{shop.advertiser.id}", name="Renamed Shop")

    listing = admin_console.get("/support/admin/advertisers?q=renamed").get_data(as_text=True)
    assert "Renamed Shop" in listing
    assert audit_rows(app, "advertiser", shop.advertiser.id)[-1].detail["changes"] == {
        "name": ["Old Shop", "Renamed Shop"]
    }


@pytest.mark.parametrize(("secret", "pattern"), [("api_key", KEY), ("s2s_token", S2S)])
def test_a_rotation_with_24h_grace_keeps_the_old_secret_working(
    app: Flask, admin_console: FlaskClient, secret: str, pattern: re.Pattern[str]
) -> None:
    shop = make_advertiser(app)

    response = post(
        admin_console, f"/support/admin/advertisers/{shop.advertiser.id}/rotate", secret=secret, grace="24h"
    )

    body = response.get_data(as_text=True)
    new = pattern.search(body)
    assert response.status_code == 200 and new and "keeps working until" in body
    with get_db(app).session() as session:
        row = session.get(Advertiser, shop.advertiser.id)
        assert row is not None and getattr(row, f"previous_{secret}_until") is not None
    entry = audit_rows(app, "advertiser", shop.advertiser.id)[-1]
    assert entry.detail["grace_seconds"] == 24 * 3600 and new.group(0) not in str(entry.detail)


def test_a_rotation_without_grace_refuses_the_old_key_at_once(app: Flask, admin_console: FlaskClient) -> None:
    shop = make_advertiser(app)
    program_id = make_program(app, shop.advertiser.id, allow_clickless=True)

    response = post(
        admin_console, f"/support/admin/advertisers/{shop.advertiser.id}/rotate", secret="api_key", grace="0"
    )

    new = KEY.search(response.get_data(as_text=True))
    assert new
    assert sale(app, shop.api_key, program_id, "OLD-KEY").status_code == 401
    assert sale(app, new.group(0), program_id, "NEW-KEY").status_code == 201


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"secret": "api_key", "grace": "30d"}, "grace: must be one of 0, 1h, 24h, 7d"),
        ({"secret": "password", "grace": "0"}, "secret: must be one of api_key, s2s_token"),
    ],
)
def test_a_bad_rotation_is_a_400_and_changes_nothing(
    app: Flask, admin_console: FlaskClient, form: dict[str, str], message: str
) -> None:
    shop = make_advertiser(app)
    before = count(app, AuditEntry)

    response = post(admin_console, f"/support/admin/advertisers/{shop.advertiser.id}/rotate", **form)

    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert count(app, AuditEntry) == before


def test_a_deactivated_advertisers_key_is_refused_with_403(app: Flask, admin_console: FlaskClient) -> None:
    shop = make_advertiser(app)
    program_id = make_program(app, shop.advertiser.id, allow_clickless=True)

    post(admin_console, f"/support/admin/advertisers/{shop.advertiser.id}/active", active="0")

    assert sale(app, shop.api_key, program_id, "AFTER-OFF").status_code == 403
    assert "deactivated" in admin_console.get("/support/admin/advertisers").get_data(as_text=True)


def test_an_admin_creates_a_program_validated_as_the_cli_validates_it(
    app: Flask, admin_console: FlaskClient, admin: Staff
) -> None:
    shop = make_advertiser(app)

    response = post(
        admin_console,
        "/support/admin/programs",
        advertiser_id=str(shop.advertiser.id),
        name="Shoes EU",
        landing_url="https://shop.example/eu?ref={clickid}",
        commission="7.5%",
        currency="eur",
        allow_clickless="on",
    )

    assert response.status_code == 302
    with get_db(app).session() as session:
        program = session.scalars(select(Program).where(Program.name == "Shoes EU")).one()
        session.expunge(program)
    assert (program.commission_type, program.commission_value, program.currency) == (
        "percent",
        Decimal("7.5"),
        "EUR",
    )
    assert program.allow_clickless is True and program.allow_advertiser_commission is False
    clicked = click(app, program.id)
    assert clicked.status_code == 302 and clicked.headers["Location"].startswith(
        "https://shop.example/eu?ref="
    )
    entry = audit_rows(app, "program", program.id)[-1]
    assert (entry.action, entry.staff_user_id) == ("create", admin.id)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("landing_url", "javascript:alert(1)", "landing_url: must be an absolute http:// or https:// URL"),
        ("landing_url", "https://shop.example/a b", "landing_url: must not contain spaces"),
        ("commission", "101%", "commission: must be a percent between 0% and 100%"),
        ("commission", "ten", "commission: must be a percent like 10%"),
        ("currency", "XXQ", "currency: must be an ISO 4217 currency code"),
        ("advertiser_id", "999999999", "advertiser_id: is not an advertiser"),
        ("advertiser_id", "", "advertiser_id: must be a whole number"),
        ("name", "", "name: must not be empty"),
    ],
)
def test_a_bad_program_is_a_400_naming_the_field_and_nothing_is_written(
    app: Flask, admin_console: FlaskClient, field: str, value: str, message: str
) -> None:
    shop = make_advertiser(app)
    form = {
        "advertiser_id": str(shop.advertiser.id),
        "name": "P",
        "landing_url": "https://shop.example/",
        "commission": "10%",
        "currency": "USD",
        field: value,
    }
    before = count(app, Program), count(app, AuditEntry)

    response = post(admin_console, "/support/admin/programs", **form)

    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert (count(app, Program), count(app, AuditEntry)) == before


def test_a_commission_change_applies_to_new_sales_only(app: Flask, admin_console: FlaskClient) -> None:
    shop = make_advertiser(app)
    program_id = make_program(app, shop.advertiser.id, allow_clickless=True)
    first = sale(app, shop.api_key, program_id, "BEFORE")

    edit = post(
        admin_console,
        f"/support/admin/programs/{program_id}",
        name="Shoes US",
        landing_url="https://shop.example/?ref={clickid}",
        commission="5.00",
        currency="USD",
        allow_clickless="on",
    )
    second = sale(app, shop.api_key, program_id, "AFTER")

    assert edit.status_code == 302
    assert first.get_json()["commission"] == "10.00" and second.get_json()["commission"] == "5.00"
    with get_db(app).session() as session:
        kept = session.scalars(
            select(Transaction.commission).where(Transaction.order_number == "BEFORE")
        ).one()
    assert kept == Decimal("10.00")
    changes = audit_rows(app, "program", program_id)[-1].detail["changes"]
    assert changes == {"commission_type": ["percent", "flat"], "commission_value": ["10", "5"]}
    page = admin_console.get(f"/support/admin/programs/{program_id}").get_data(as_text=True)
    assert "applies to transactions recorded from now on" in page


def test_the_currency_is_fixed_once_the_program_has_sales(app: Flask, admin_console: FlaskClient) -> None:
    shop = make_advertiser(app)
    program_id = make_program(app, shop.advertiser.id, allow_clickless=True)
    sale(app, shop.api_key, program_id, "ONE")

    response = post(
        admin_console,
        f"/support/admin/programs/{program_id}",
        name="Shoes US",
        landing_url="https://shop.example/?ref={clickid}",
        commission="10%",
        currency="EUR",
        allow_clickless="on",
    )

    assert response.status_code == 400
    assert "currency: cannot change: the program has transactions in USD" in response.get_data(as_text=True)
    assert program_row(app, program_id).currency == "USD"


def test_unticking_clickless_is_saved(app: Flask, admin_console: FlaskClient) -> None:
    shop = make_advertiser(app)
    program_id = make_program(app, shop.advertiser.id, allow_clickless=True)

    post(
        admin_console,
        f"/support/admin/programs/{program_id}",
        name="Shoes US",
        landing_url="https://shop.example/?ref={clickid}",
        commission="10%",
        currency="USD",
    )

    assert program_row(app, program_id).allow_clickless is False
    assert sale(app, shop.api_key, program_id, "NO-CLICK").status_code == 400


def test_a_deactivated_programs_link_answers_404(app: Flask, admin_console: FlaskClient) -> None:
    shop = make_advertiser(app)
    program_id = make_program(app, shop.advertiser.id)

    post(admin_console, f"/support/admin/programs/{program_id}/active", active="0")

    assert click(app, program_id).status_code == 404
    assert audit_rows(app, "program", program_id)[-1].action == "deactivate"


def test_programs_are_listed_by_advertiser_and_searched(app: Flask, admin_console: FlaskClient) -> None:
    shop, other = make_advertiser(app, "Shop One"), make_advertiser(app, "Shop Two")
    make_program(app, shop.advertiser.id, name="Sneakers")
    make_program(app, other.advertiser.id, name="Boots")

    mine = admin_console.get(f"/support/admin/programs?advertiser_id={shop.advertiser.id}").get_data(
        as_text=True
    )
    by_advertiser_name = admin_console.get("/support/admin/programs?q=shop two").get_data(as_text=True)
    bad = admin_console.get("/support/admin/programs?advertiser_id=x")

    assert "Sneakers" in mine and "Boots" not in mine
    assert "Boots" in by_advertiser_name and "Sneakers" not in by_advertiser_name
    assert bad.status_code == 400 and "advertiser_id: must be a whole number" in bad.get_data(as_text=True)
