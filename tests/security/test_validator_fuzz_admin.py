"""Hypothesis on the network administration forms (`/support/admin/...`, as an admin): a valid program,
publisher, staff user or program edit with one field replaced by hostile text, and any search text.

Properties: never a 5xx; a refusal is a 400 whose message names the field it changed (`field: problem`),
writes no row (no party, no audit entry) and leaves an edited program as it was; an accepted form saved what
the CLI would accept (a program's landing URL is an http(s) URL and its commission a percent up to 100 or a
flat amount), with exactly one audit entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from html import unescape
from typing import Any

import pytest
from flask import Flask
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import func, select

from dispatcher import accounts, validation
from dispatcher.db import get_db
from dispatcher.models import Advertiser, AuditEntry, Program, Publisher, StaffUser
from tests.security.fuzz_support import HOSTILE_STRINGS, Figures, backend, fuzz_settings
from tests.support.conftest import csrf_of, make_staff, staff_log_in

FIGURES = Figures("administration")
PASSWORD = "correct-horse-battery"
# Form fields are text: every code point a browser can send (no lone surrogates: they have no UTF-8).
form_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40) | st.sampled_from(
    HOSTILE_STRINGS
)
PROGRAM = {
    "name": "Shoes",
    "landing_url": "https://shop.example/?ref={clickid}",
    "commission": "10%",
    "currency": "USD",
    "allow_clickless": "on",
}
TABLES = (Advertiser, Program, Publisher, StaffUser, AuditEntry)


class Admin:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client = app.test_client()
        staff_log_in(self.client, make_staff(app, "admin"))
        self.csrf = csrf_of(self.client, "/support/account")
        with get_db(app).session() as session:
            self.advertiser_id = accounts.create_advertiser(session, "Fuzz shop").advertiser.id
            session.commit()

    def post(self, path: str, form: dict[str, str]) -> Any:
        return self.client.post(path, data={**form, "csrf_token": self.csrf})

    def counts(self) -> dict[str, int]:
        with get_db(self.app).session() as session:
            return {
                model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
                for model in TABLES
            }


@pytest.fixture(scope="module", autouse=True)
def _print_figures() -> Iterator[None]:
    yield
    print(FIGURES.report())


@pytest.fixture
def admin(app: Flask, database_url: str) -> Admin:
    return Admin(app)


def _refused_naming(response: Any, field: str) -> None:
    assert response.status_code == 400, response.status_code
    message = unescape(response.get_data(as_text=True))
    assert f"{field}: " in message, (field, message[:300])


def _check_program(program: Program) -> None:
    validation.http_url("landing_url", program.landing_url)
    assert program.commission_value >= 0 and program.commission_value.is_finite()
    assert program.commission_type == "flat" or program.commission_value <= Decimal(100)
    assert len(program.currency) == 3 and program.currency.isupper()


@fuzz_settings
@given(field=st.sampled_from(sorted(PROGRAM)), value=form_text)
@example(field="commission", value="1E+999999")
@example(field="commission", value="NaN")
@example(field="landing_url", value="https://t.example:99999/")
@example(field="currency", value="usd ")
def test_a_near_valid_program_is_created_or_refused_naming_the_field(
    admin: Admin, database_url: str, field: str, value: str
) -> None:
    case = FIGURES.count("create_program", backend(database_url))
    before = admin.counts()

    response = admin.post(
        "/support/admin/programs", {**PROGRAM, "advertiser_id": str(admin.advertiser_id), field: value}
    )

    after = admin.counts()
    assert response.status_code in (302, 400), response.get_data(as_text=True)[:300]
    FIGURES.outcome(case, str(response.status_code))
    if response.status_code == 400:
        _refused_naming(response, field)
        assert after == before
        return
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == {
        "programs": 1,
        "audit_entries": 1,
    }
    program_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with get_db(admin.app).session() as session:
        program = session.get(Program, program_id)
        assert program is not None
        _check_program(program)


@fuzz_settings
@given(field=st.sampled_from(sorted(PROGRAM)), value=form_text)
def test_a_near_valid_program_edit_saves_or_leaves_the_program_as_it_was(
    admin: Admin, database_url: str, field: str, value: str
) -> None:
    case = FIGURES.count("edit_program", backend(database_url))
    with get_db(admin.app).session() as session:
        program_id = accounts.create_program(
            session, admin.advertiser_id, "Edited", landing_url="https://shop.example/", commission="5%"
        ).id
        session.commit()
    before = admin.counts()

    response = admin.post(f"/support/admin/programs/{program_id}", {**PROGRAM, field: value})

    assert response.status_code in (302, 400), response.get_data(as_text=True)[:300]
    FIGURES.outcome(case, str(response.status_code))
    with get_db(admin.app).session() as session:
        program = session.get(Program, program_id)
        assert program is not None
        if response.status_code == 400:
            _refused_naming(response, field)
            assert admin.counts() == before
            assert (program.name, program.landing_url, program.commission_value) == (
                "Edited",
                "https://shop.example/",
                Decimal(5),
            )
            return
        _check_program(program)


PUBLISHER = {"name": "Acme", "email": "ops@acme.example", "password": PASSWORD}


@fuzz_settings
@given(field=st.sampled_from(sorted(PUBLISHER)), value=form_text)
@example(field="email", value="a@b.c\x00")
@example(field="name", value="\u202e")
def test_a_near_valid_publisher_is_created_or_refused_naming_the_field(
    admin: Admin, database_url: str, field: str, value: str
) -> None:
    case = FIGURES.count("create_publisher", backend(database_url))
    before = admin.counts()
    form = {**PUBLISHER, "email": f"fuzz{before['publishers']}@acme.example", field: value}

    response = admin.post("/support/admin/publishers", form)

    assert response.status_code in (200, 400), response.get_data(as_text=True)[:300]
    FIGURES.outcome(case, str(response.status_code))
    if response.status_code == 400:
        _refused_naming(response, field)
        assert admin.counts() == before
        return
    after = admin.counts()
    assert (
        after["publishers"] == before["publishers"] + 1
        and after["audit_entries"] == before["audit_entries"] + 1
    )


@fuzz_settings
@given(field=st.sampled_from(["email", "role", "password"]), value=form_text)
def test_a_near_valid_staff_user_is_created_or_refused_naming_the_field(
    admin: Admin, database_url: str, field: str, value: str
) -> None:
    case = FIGURES.count("create_staff", backend(database_url))
    before = admin.counts()
    form = {
        "email": f"fuzz{before['staff_users']}@staff.test",
        "role": "support",
        "password": PASSWORD,
        field: value,
    }

    response = admin.post("/support/admin/staff", form)

    assert response.status_code in (302, 400), response.get_data(as_text=True)[:300]
    FIGURES.outcome(case, str(response.status_code))
    if response.status_code == 400:
        _refused_naming(response, field)
        assert admin.counts() == before


@fuzz_settings
@given(
    path=st.sampled_from(["publishers", "advertisers", "programs", "staff"]),
    name=st.sampled_from(["q", "after", "advertiser_id"]),
    value=form_text,
)
@example(path="publishers", name="q", value="%")
@example(path="programs", name="advertiser_id", value="99999999999999999999")
def test_any_search_is_a_page_or_a_400_naming_the_parameter(
    admin: Admin, database_url: str, path: str, name: str, value: str
) -> None:
    case = FIGURES.count("search", backend(database_url))
    before = admin.counts()

    response = admin.client.get(f"/support/admin/{path}", query_string={name: value})

    assert response.status_code in (200, 400), response.get_data(as_text=True)[:300]
    FIGURES.outcome(case, str(response.status_code))
    if response.status_code == 400:
        _refused_naming(response, name)
    assert admin.counts() == before


def test_a_search_for_a_percent_sign_matches_it_literally(app: Flask, database_url: str) -> None:
    admin = Admin(app)
    with get_db(app).session() as session:
        accounts.create_advertiser(session, "100% Deals")
        session.commit()

    page = admin.client.get("/support/admin/advertisers", query_string={"q": "%"}).get_data(as_text=True)

    assert "100% Deals" in page and "Fuzz shop" not in page
