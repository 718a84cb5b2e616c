"""Cases the validator fuzzing found in the ledger (dispatcher/ledger/*), kept as plain tests once fixed: each
was a 500, a value recorded other than sent, or a file none of whose sales was recorded. Every channel (API,
S2S, CSV) is checked where it reads the value its own way.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dispatcher.currencies import minor_units
from dispatcher.db import get_db
from dispatcher.ledger.reports import FIELD_NAMES
from tests.dispatcher.ledger.conftest import Network, build_network
from tests.security.fuzz_intake import commission_of, stored
from tests.security.fuzz_support import assert_error_shape, json_body, row_counts, written


@pytest.fixture
def network(app: Flask, client: FlaskClient) -> Network:
    with get_db(app).session() as session:
        ids = build_network(app, session, allow_clickless=True, allow_advertiser_commission=True)
    return Network(app=app, client=client, **ids)


def _report(network: Network, body: dict[str, Any]) -> Any:
    headers = {"Authorization": f"Bearer {network.api_key}", "Content-Type": "application/json"}
    return network.client.post("/api/v1/transactions", data=json_body(body), headers=headers)


def _refused_naming(network: Network, body: dict[str, Any], field: str) -> None:
    before = row_counts(network.app)

    response = _report(network, body)

    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert list(assert_error_shape(response)) == [field]
    assert written(before, row_counts(network.app)) == {}


def _upload(network: Network, data: bytes) -> dict[str, Any]:
    response = network.client.post(
        "/api/v1/transactions/batch",
        data=data,
        headers={"Authorization": f"Bearer {network.api_key}", "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    answer: dict[str, Any] = response.get_json()
    return answer


@pytest.mark.parametrize("field", FIELD_NAMES)
def test_a_lone_surrogate_in_any_reported_field_is_a_400_naming_it(network: Network, field: str) -> None:
    body = {"click_id": network.click(), "order_number": "o-1", "sale_amount": "1.00", field: "x\ud800"}

    _refused_naming(network, body, field)


@pytest.mark.parametrize(("name", "value"), [("on", "a\x00b"), ("clickid", "c\x00"), ("sa", "1\x00")])
def test_a_nul_in_an_s2s_parameter_is_a_400_naming_it(network: Network, name: str, value: str) -> None:
    params = {
        "token": network.s2s_token,
        "clickid": network.click(),
        "on": "o-s2s",
        "sa": "1.00",
        name: value,
    }
    before = row_counts(network.app)

    response = network.client.get("/s2s/transaction", query_string=params)

    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert list(assert_error_shape(response)) == [name]
    assert written(before, row_counts(network.app)) == {}


def test_a_surrogates_bytes_in_an_s2s_url_are_recorded_as_their_escapes(network: Network) -> None:
    # A URL cannot carry a lone surrogate, only the bytes a broken encoder makes of it (ED A0 80); werkzeug
    # leaves bytes that are not UTF-8 as their escapes.
    query = f"token={network.s2s_token}&clickid={network.click()}&on=x%ED%A0%80&sa=1.00"

    response = network.client.get(f"/s2s/transaction?{query}")

    assert response.status_code == 201, response.get_data(as_text=True)[:300]
    row, _ = stored(network, response.get_json()["sales_id"])
    assert row.order_number == "x%ED%A0%80"


def test_a_nul_or_a_surrogates_bytes_in_a_csv_line_spoil_that_line_only(network: Network) -> None:
    lines = [
        f"{network.click()},nul-\x00,1.00",
        f"{network.click()},good-1,2.00",
        f"{network.click()},sur-\ud800,3.00",
    ]
    data = "\n".join(lines).encode("utf-8", "surrogatepass")

    answer = _upload(network, data)

    by_line = {result["line"]: result for result in answer["results"]}
    assert by_line[1]["fields"].keys() <= {"order_number", "line"}, by_line[1]  # csv refuses NUL itself
    assert "sales_id" in by_line[2], answer
    # Bytes that are not UTF-8 are refused, not replaced: replaced, two different orders could become one.
    assert by_line[3]["fields"] == {"line": "is not UTF-8 text: save the file as UTF-8 (Excel: CSV UTF-8)"}
    assert answer["summary"] == {"lines": 3, "recorded": 1, "changed": 0, "duplicates": 0, "rejected": 2}


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_event_time_at_the_edge_of_the_calendar_is_a_400(network: Network, moment: str) -> None:
    body = {"click_id": network.click(), "order_number": "o-2", "sale_amount": "1.00", "event_time": moment}

    _refused_naming(network, body, "event_time")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sale_amount", "1.0000000000000000000000000000001"),  # was rounded to 1.00 in a 28-digit context
        ("sale_amount", Decimal("1.0000000000000000000000000000001")),
        ("sale_amount", Decimal("1." + "0" * 9998 + "1")),  # 10,000 digits as a JSON number
        ("sale_amount", Decimal("1." + "0" * 60)),  # exactly 1, but written with more digits than allowed
        ("commission", "0.1000000000000000000000000000001"),
    ],
)
def test_an_amount_with_too_many_digits_is_refused_not_rounded(
    network: Network, field: str, value: Any
) -> None:
    body = {"click_id": network.click(), "order_number": "o-3", "sale_amount": "1.00", field: value}

    _refused_naming(network, body, field)


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("999999999999.99", "USD"), ("999999999999.9999", "CLF"), ("1.0000000000000000000000000000", "USD")],
)
def test_the_largest_and_the_longest_amounts_are_stored_exactly(
    network: Network, amount: str, currency: str
) -> None:
    response = _report(
        network,
        {
            "click_id": network.click(),
            "order_number": f"big-{currency}",
            "sale_amount": amount,
            "currency": currency,
        },
    )

    assert response.status_code == 201, response.get_json()
    row, _ = stored(network, response.get_json()["sales_id"])
    assert row.sale_amount == Decimal(amount) and row.currency == currency  # NUMERIC(18, 4) on PostgreSQL
    assert row.commission == commission_of(Decimal(amount), minor_units(currency))


@pytest.mark.parametrize("amount", ["-0", "-0.00", Decimal("-0"), Decimal("-0E+2")])
def test_a_negative_zero_amount_is_a_zero_sale_without_a_minus_sign(network: Network, amount: Any) -> None:
    response = _report(network, {"click_id": network.click(), "order_number": "o-4", "sale_amount": amount})

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["commission"] == "0.00"
    row, _ = stored(network, response.get_json()["sales_id"])
    assert row.sale_amount == row.commission == 0
    assert not str(row.sale_amount).startswith("-") and not str(row.commission).startswith("-")
    changed = network.change(response.get_json()["sales_id"], {"sale_amount": "-0.00", "commission": "-0"})
    assert changed.status_code == 200, changed.get_json()
    assert (changed.get_json()["sale_amount"], changed.get_json()["commission"]) == ("0.00", "0.00")


@pytest.mark.parametrize("sales_id", ["a%00b", "a%ED%A0%80b", "a%20b", "%C3%A9", "x" * 33, "a.b"])
def test_a_sales_id_no_sale_can_have_is_a_404(network: Network, sales_id: str) -> None:
    network.sale()  # a transaction exists, so the lookup has something to miss
    before = row_counts(network.app)

    response = network.client.post(
        f"/api/v1/transactions/{sales_id}/status",
        json={"status": "approved"},
        headers={"Authorization": f"Bearer {network.api_key}"},
    )

    assert response.status_code == 404, response.get_data(as_text=True)[:300]
    assert list(assert_error_shape(response)) == ["sales_id"]
    assert written(before, row_counts(network.app)) == {}


@pytest.mark.parametrize("ending", ["\r", "\r\n", "\n"])
def test_a_csv_is_read_whatever_its_line_ends(network: Network, ending: str) -> None:
    lines = ["click_id,order_number,sale_amount", *(f"{network.click()},end-{n},1.00" for n in range(3))]

    answer = _upload(network, (ending.join(lines) + ending).encode())

    assert [result["line"] for result in answer["results"]] == [2, 3, 4], answer
    assert answer["summary"]["recorded"] == 3, answer


def test_a_csv_with_mixed_line_ends_and_a_quoted_line_end_keeps_its_line_numbers(network: Network) -> None:
    data = (
        f"click_id,order_number,sale_amount\r{network.click()},mix-1,1.00\r\n"
        f'{network.click()},"mix\r2",2.00\n{network.click()},mix-3,3.00\r'
    ).encode()

    answer = _upload(network, data)

    results = {result["line"]: result for result in answer["results"]}
    # The quoted CR: the record spans lines 3-4, named by its first line, where an editor shows it starting.
    assert sorted(results) == [2, 3, 5], answer
    assert "sales_id" in results[2] and "sales_id" in results[5], answer
    assert list(results[3]["fields"]) == ["order_number"], results[3]  # a control character in an order
