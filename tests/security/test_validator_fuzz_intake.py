"""Hypothesis on the advertiser intake: JSON sales, S2S query strings and forms, status changes.

Every property: never a 5xx; a 4xx is exactly `{"error": str, "fields": {str: str}}` naming the field that was
wrong; a refused request writes no row; an accepted one stores what was sent (amount exact, commission by the
program's rule). Real Flask app, real SQLite and PostgreSQL, real Redis for the hand-over to RQ.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import example, given
from hypothesis import strategies as st

from dispatcher.ledger.reports import FIELD_NAMES
from dispatcher.web.s2s_params import KNOWN, QUERY_NAMES
from tests.dispatcher.ledger.conftest import Network
from tests.security.fuzz_intake import (
    MUTATIONS,
    RELATED,
    amounts,
    as_query_value,
    check_accepted_sale,
    commission_of,
    expected_amount,
    mutations,
    network_with_postback,
    new_order,
    stored,
    unknown_keys,
)
from tests.security.fuzz_support import (
    ANY_CHARS,
    Figures,
    assert_error_shape,
    assert_names_a_field,
    backend,
    fuzz_settings,
    json_body,
    json_values,
    row_counts,
    written,
)

FIGURES = Figures("intake")
QUERY_OF_FIELD = {field: name for name, field in QUERY_NAMES.items()}


@pytest.fixture(scope="module", autouse=True)
def _print_figures() -> Iterator[None]:
    yield
    print(FIGURES.report())


@pytest.fixture
def network(app: Flask, client: FlaskClient, database_url: str) -> Network:
    return network_with_postback(app, client)


def _report(network: Network, body: object) -> Any:
    """Bytes are sent as they are (broken JSON); anything else as JSON text."""
    headers = {"Authorization": f"Bearer {network.api_key}", "Content-Type": "application/json"}
    data = body if isinstance(body, bytes) else json_body(body)
    return network.client.post("/api/v1/transactions", data=data, headers=headers)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _check_outcome(
    network: Network, response: Any, sent: dict[str, Any], before: dict[str, int], names: set[str]
) -> str:
    """The common oracle of one report; `names` are the fields a refusal may name. Returns the outcome."""
    after = row_counts(network.app)
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code == 201:
        check_accepted_sale(network, response.get_json(), sent)
        assert written(before, after) == {"transactions": 1, "transaction_events": 1, "deliveries": 1}
        return "recorded"
    if response.status_code == 200:
        assert response.get_json().get("duplicate") is True, response.get_json()
        assert written(before, after) == {}
        return "duplicate"
    fields = assert_error_shape(response)
    assert_names_a_field(fields, names)
    assert written(before, after) == {}, (sent, response.get_json())
    return "refused"


@fuzz_settings
@given(mutation=mutations, unknown_key=unknown_keys)
@example(mutation=("sale_amount", "1e3"), unknown_key="x")
@example(mutation=("sale_amount", "NaN"), unknown_key="x")
@example(mutation=("sale_amount", "0.001"), unknown_key="x")
@example(mutation=("sale_amount", [1]), unknown_key="x")
@example(mutation=("currency", "usd"), unknown_key="x")
@example(mutation=("event_time", "2026-11-20T14:30:00"), unknown_key="x")
@example(mutation=("order_number", "x" * 256), unknown_key="x")
@example(mutation=("order_number", "a\x00b"), unknown_key="x")
@example(mutation=("unknown", None), unknown_key="sales_id")
def test_a_near_valid_json_sale_is_recorded_exactly_or_refused_naming_the_field(
    network: Network, database_url: str, mutation: tuple[str, Any], unknown_key: str
) -> None:
    case = FIGURES.count("json_near_valid_sale", backend(database_url))
    name, value = mutation
    body: dict[str, Any] = {"click_id": network.click(), "order_number": new_order(), "sale_amount": "12.34"}
    key = unknown_key if name == "unknown" else name
    body[key] = value
    before = row_counts(network.app)

    response = _report(network, body)

    names = {key, *RELATED.get(name, ())}
    outcome = _check_outcome(network, response, body, before, names)
    FIGURES.outcome(case, outcome)
    if name == "sale_amount" and outcome != "duplicate":
        assert (outcome == "recorded") == (expected_amount(value) is not None), (value, response.get_json())


@fuzz_settings
@given(
    body=json_values()
    | st.dictionaries(st.sampled_from([*FIELD_NAMES, "x"]), json_values(), max_size=6)
    | st.binary(max_size=60)
)
@example(body=[])
@example(body={"sale_amount": {"$gt": 0}})
@example(body=b'{"sale_amount": NaN}')
@example(body=b"[" * 5000)
@example(body=b"\xff\xfe{")
def test_any_json_body_is_answered_cleanly_and_writes_nothing_unless_recorded(
    network: Network, database_url: str, body: object
) -> None:
    FIGURES.count("json_any_body", backend(database_url))
    before = row_counts(network.app)

    response = _report(network, body)

    names = set(body) if isinstance(body, dict) else set()
    # Without a valid click_id (never generated here) nothing can be attributed, so nothing is recorded.
    if response.status_code == 413:
        assert_error_shape(response)
        assert written(before, row_counts(network.app)) == {}
        return
    assert response.status_code == 400, (body, response.get_data(as_text=True))
    # A key of the body, a required field it lacks, or the body itself.
    assert_names_a_field(assert_error_shape(response), {*names, *FIELD_NAMES, "body"})
    assert written(before, row_counts(network.app)) == {}


@fuzz_settings
@given(mutation=mutations, unknown_key=unknown_keys, method=st.sampled_from(["GET", "POST"]))
@example(mutation=("sale_amount", " 1"), unknown_key="x", method="GET")
@example(mutation=("order_number", '=HYPERLINK("http://x")'), unknown_key="x", method="POST")
def test_a_near_valid_s2s_report_is_recorded_exactly_or_refused_naming_the_parameter(
    network: Network, database_url: str, mutation: tuple[str, Any], unknown_key: str, method: str
) -> None:
    case = FIGURES.count("s2s_near_valid_sale", backend(database_url))
    name, value = mutation
    fields: dict[str, Any] = {
        "click_id": network.click(),
        "order_number": new_order(),
        "sale_amount": "12.34",
    }
    if name != "unknown":
        fields[name] = as_query_value(value)
    params = {QUERY_OF_FIELD[field]: text for field, text in fields.items() if text is not None}
    params["token"] = network.s2s_token
    if name == "unknown" and unknown_key not in KNOWN:
        params[unknown_key] = str(value)  # ignored, and listed: URLs carry all sorts of tracker parameters
    before = row_counts(network.app)

    # A URL carries bytes: a lone surrogate goes as its UTF-8-like bytes (%ED%A0%80), which no decoder takes.
    encoded = urlencode(params, errors="surrogatepass")
    if method == "GET":
        response = network.client.get("/s2s/transaction", query_string=encoded)
    else:
        form = "application/x-www-form-urlencoded"
        response = network.client.post("/s2s/transaction", data=encoded, content_type=form)

    sent = {field: _as_received(params.get(QUERY_OF_FIELD[field])) for field in fields}
    named = {QUERY_OF_FIELD[name]} if name in QUERY_OF_FIELD else set()
    names = named | {QUERY_OF_FIELD[field] for field in RELATED.get(name, ())}
    outcome = _check_outcome(network, response, sent, before, names)
    FIGURES.outcome(case, outcome)
    if name == "sale_amount" and outcome != "duplicate":
        expected = expected_amount(as_query_value(value))
        assert (outcome == "recorded") == (expected is not None), (value, response.get_json())


def _as_received(value: str | None) -> str | None:
    """The text the app reads from a URL that carried `value`: werkzeug leaves bytes that are not UTF-8 as
    their %-escapes (its error handler, registered when werkzeug.urls is imported)."""
    if value is None:
        return None
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "werkzeug.url_quote")


STATUS_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "status": MUTATIONS["status"],
        "sale_amount": amounts,
        "commission": st.sampled_from([None, "", "1.00"]),
    },
) | st.dictionaries(st.sampled_from(["status", "sale_amount", "commission", "event", "x"]), json_values())


@fuzz_settings
@given(body=STATUS_BODIES)
@example(body={"status": "approved"})
@example(body={"status": "reversed"})
@example(body={"sale_amount": "200.00"})
@example(body={"status": "declined", "sale_amount": "-0"})
@example(body={"status": ["approved"]})
def test_a_status_change_follows_the_transitions_or_is_refused_without_writing(
    network: Network, database_url: str, body: dict[str, Any]
) -> None:
    case = FIGURES.count("status_change", backend(database_url))
    sale = network.sale(sale_amount="100.00")
    before = row_counts(network.app)

    response = network.client.post(
        f"/api/v1/transactions/{sale['sales_id']}/status",
        data=json_body(body),
        headers={"Authorization": f"Bearer {network.api_key}", "Content-Type": "application/json"},
    )

    after = row_counts(network.app)
    row, kinds = stored(network, sale["sales_id"])
    assert response.status_code in (200, 400, 409), response.get_data(as_text=True)
    FIGURES.outcome(case, str(response.status_code))
    if response.status_code != 200:
        fields = assert_error_shape(response, extra={"current_status"} if response.status_code == 409 else ())
        assert_names_a_field(fields, {*body, "status"})  # status is the field a change needs
        assert written(before, after) == {}
        assert (row.status, row.sale_amount, row.commission, kinds) == (
            "pending",
            Decimal("100.00"),
            Decimal("10.00"),
            ["created"],
        )
        return
    answer = response.get_json()
    status = body.get("status")
    wanted = "pending" if _blank(status) else str(status).strip().lower()
    assert wanted in ("approved", "declined", "pending"), (body, answer)
    assert row.status == answer["status"] == wanted
    assert kinds == ["created", answer["event"]]
    assert written(before, after).get("transaction_events") == 1
    raw_amount = body.get("sale_amount")
    amount = Decimal("100.00") if _blank(raw_amount) else expected_amount(raw_amount)
    assert amount is not None, body
    assert row.sale_amount == amount and row.commission == commission_of(amount), (body, answer)
    assert (
        Decimal(answer["sale_amount"]) == row.sale_amount and Decimal(answer["commission"]) == row.commission
    )


@fuzz_settings
@given(sales_id=st.text(ANY_CHARS.filter(lambda char: char != "/"), max_size=60))
@example(sales_id="x" * 33)
@example(sales_id="a\x00b")  # was a 500 on PostgreSQL (NUL in text)
@example(sales_id="a\ud800b")
@example(sales_id="../batch")
@example(sales_id="' OR 1=1 --")
def test_any_sales_id_in_the_status_path_is_a_clean_4xx(
    network: Network, database_url: str, sales_id: str
) -> None:
    FIGURES.count("status_path", backend(database_url))
    before = row_counts(network.app)

    response = network.client.post(
        f"/api/v1/transactions/{quote(sales_id, safe='', errors='surrogatepass')}/status",
        json={"status": "approved"},
        headers={"Authorization": f"Bearer {network.api_key}"},
    )

    assert response.status_code in (404, 405), response.get_data(as_text=True)
    fields = assert_error_shape(response)
    if response.status_code == 404 and fields:
        assert set(fields) == {"sales_id"}
    assert written(before, row_counts(network.app)) == {}
