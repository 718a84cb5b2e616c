"""Hypothesis on the advertiser portal's forms and filters: hostile values in the transaction list's filters,
the one-transaction change form (status, sale amount), the bulk confirmation and the rotation form.

Properties: never a 5xx; a refusal is a 4xx page that names the field, shows the value escaped (no markup
of it survives), and writes nothing; an accepted change writes exactly one event.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import assume, example, given
from hypothesis import strategies as st

from dispatcher.advertiser.integration import GRACE_CHOICES, SECRETS
from dispatcher.db import get_db
from tests.advertiser.conftest import Shop, advertiser_log_in, csrf_of, make_shop, report_sale
from tests.security.fuzz_support import (
    HOSTILE_STRINGS,
    Figures,
    any_text,
    backend,
    fuzz_settings,
    row_counts,
    written,
)
from tests.workers.conftest import Receiver

FIGURES = Figures("advertiser portal")
values = st.one_of(any_text, st.sampled_from(HOSTILE_STRINGS))
FILTERS = ("order_number", "status", "event", "program_id", "from", "to", "before")


@pytest.fixture(scope="module", autouse=True)
def _print_figures() -> Iterator[None]:
    yield
    print(FIGURES.report())


@pytest.fixture
def world(app: Flask, client: FlaskClient, clean_redis: Any) -> Iterator[tuple[Shop, str]]:
    receiver = Receiver()
    shop = make_shop(app, receiver.url(""))
    sales_id = report_sale(client, shop, "FUZZ-1")
    advertiser_log_in(client, shop.email)
    yield shop, sales_id
    receiver.close()


def _refusal_is_clean(response: Any, field: str, value: str) -> None:
    body = response.get_data(as_text=True)
    assert 400 <= response.status_code < 500, (response.status_code, body[:300])
    assert field in body, body[:2000]
    if "<" in value:
        assert value not in body  # shown escaped, never as markup
    assert "<script>alert(1)</script>" not in body


@fuzz_settings
@given(name=st.sampled_from(FILTERS), value=values)
@example(name="status", value="<script>alert(1)</script>")
@example(name="program_id", value="9" * 30)
@example(name="from", value="9999-12-31T23:59:59.999999-23:59")
def test_list_filters_answer_a_page_or_a_400_naming_the_filter(
    app: Flask, client: FlaskClient, world: tuple[Shop, str], name: str, value: str
) -> None:
    key = FIGURES.count("list filters", backend(get_db(app).url))
    response = client.get("/advertiser/transactions", query_string={name: value})

    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code == 200:
        FIGURES.outcome(key, "listed")
        return
    FIGURES.outcome(key, "refused")
    _refusal_is_clean(response, name, value)


@fuzz_settings
@given(status=st.one_of(st.none(), values), amount=st.one_of(st.none(), values))
@example(status="approved ", amount=None)
@example(status=None, amount="1E+999999")
@example(status="<b>x</b>", amount="NaN")
def test_the_change_form_changes_once_or_refuses_naming_the_field_and_writes_nothing(
    app: Flask, client: FlaskClient, world: tuple[Shop, str], status: str | None, amount: str | None
) -> None:
    _, sales_id = world
    key = FIGURES.count("change form", backend(get_db(app).url))
    form = {"csrf_token": csrf_of(client, "/advertiser/upload")}
    form.update({k: v for k, v in (("status", status), ("sale_amount", amount)) if v is not None})
    before = row_counts(app)

    response = client.post(f"/advertiser/transactions/{sales_id}/status", data=form)

    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    added = written(before, row_counts(app))
    if response.status_code == 302:
        FIGURES.outcome(key, "changed")
        assert added.get("transaction_events") == 1, added
        return
    FIGURES.outcome(key, f"refused {response.status_code}")
    assert added == {}, added
    body = html.unescape(response.get_data(as_text=True))
    assert "status" in body or "sale_amount" in body


@fuzz_settings
@given(action=values, order_number=values)
@example(action="approved", order_number="<img src=x onerror=alert(1)>")
def test_the_bulk_confirmation_counts_or_refuses_naming_the_field(
    app: Flask, client: FlaskClient, world: tuple[Shop, str], action: str, order_number: str
) -> None:
    key = FIGURES.count("bulk confirmation", backend(get_db(app).url))
    response = client.get("/advertiser/bulk", query_string={"action": action, "order_number": order_number})

    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    FIGURES.outcome(key, "counted" if response.status_code == 200 else "refused")
    if response.status_code != 200:
        _refusal_is_clean(
            response,
            "action" if action.strip() not in ("approved", "declined", "reversed") else "order_number",
            action,
        )


@fuzz_settings
@given(secret=values, grace=values)
@example(secret="api_key", grace="30d")
def test_the_rotation_form_refuses_anything_not_offered_and_writes_nothing(
    app: Flask, client: FlaskClient, world: tuple[Shop, str], secret: str, grace: str
) -> None:
    assume(not (secret in SECRETS and grace in GRACE_CHOICES))  # that one is a rotation (test_integration)
    key = FIGURES.count("rotation form", backend(get_db(app).url))
    shop, _ = world
    before = client.get("/api/v1/transactions", headers=shop.auth).status_code
    form = {"secret": secret, "grace": grace, "csrf_token": csrf_of(client, "/advertiser/upload")}

    response = client.post("/advertiser/integration/rotate", data=form)

    FIGURES.outcome(key, "refused" if response.status_code == 400 else str(response.status_code))
    assert response.status_code == 400, response.get_data(as_text=True)[:500]
    assert before == 200 and client.get("/api/v1/transactions", headers=shop.auth).status_code == 200
