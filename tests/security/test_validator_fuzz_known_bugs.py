"""Bugs the validator fuzzing found in files another engineer owns (dispatcher/ledger/*,
dispatcher/web/advertiser_api.py), kept as strict xfails: each names the bug; when it is fixed the test
passes, strict xfail turns that into a failure, and the marker is removed (and the exclusion in
tests/security/fuzz_intake.py or fuzz_support.py lifted).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dispatcher.db import get_db
from tests.dispatcher.ledger.conftest import Network, build_network
from tests.security.fuzz_support import assert_error_shape, json_body, row_counts, written


@pytest.fixture
def network(app: Flask, client: FlaskClient) -> Network:
    with get_db(app).session() as session:
        ids = build_network(app, session)
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


@pytest.mark.xfail(
    strict=True,
    reason="BUG dispatcher/ledger/fields.py text(): a lone surrogate (JSON \\ud800) passes the check and the "
    "INSERT fails with UnicodeEncodeError: 500 instead of a 400 naming the field",
)
@pytest.mark.parametrize("field", ["order_number", "click_id"])
def test_a_lone_surrogate_in_a_reported_text_is_a_400(network: Network, field: str) -> None:
    body = {"click_id": network.click(), "order_number": "o-1", "sale_amount": "1.00", field: "x\ud800"}

    _refused_naming(network, body, field)


@pytest.mark.xfail(
    strict=True,
    reason="BUG dispatcher/ledger/fields.py _parse_time(): astimezone(UTC) runs outside the try, so an "
    "offset that moves the time past year 1 or 9999 raises OverflowError: 500, not a 400 naming event_time",
)
@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_event_time_at_the_edge_of_the_calendar_is_a_400(network: Network, moment: str) -> None:
    body = {"click_id": network.click(), "order_number": "o-2", "sale_amount": "1.00", "event_time": moment}

    _refused_naming(network, body, "event_time")


@pytest.mark.xfail(
    strict=True,
    reason="BUG dispatcher/ledger/fields.py in_currency(): normalize() runs in the default 28-digit "
    "context, so 1.0000000000000000000000000000001 USD is rounded to 1.00 and recorded, not refused",
)
def test_an_amount_with_more_than_28_digits_and_too_many_decimals_is_refused(network: Network) -> None:
    body = {
        "click_id": network.click(),
        "order_number": "o-3",
        "sale_amount": "1.0000000000000000000000000000001",
    }

    _refused_naming(network, body, "sale_amount")


@pytest.mark.xfail(
    strict=True,
    reason="BUG dispatcher/ledger/fields.py amount(): Decimal('-0') is not < 0, so a sale of -0 is recorded "
    "with sale_amount and commission '-0.00' (shown in the API answer)",
)
def test_a_negative_zero_amount_is_answered_without_a_minus_sign(network: Network) -> None:
    response = _report(network, {"click_id": network.click(), "order_number": "o-4", "sale_amount": "-0"})

    assert response.status_code == 201 and response.get_json()["commission"] == "0.00", response.get_json()


def test_a_sales_id_with_a_nul_is_a_404(
    network: Network, database_url: str, request: pytest.FixtureRequest
) -> None:
    if database_url.startswith("postgresql"):
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="BUG dispatcher/ledger/status.py _load(): a sales id with NUL goes to PostgreSQL, "
                "which refuses NUL in text (DataError): 500 instead of the 404 SQLite gives",
            )
        )
    before = row_counts(network.app)

    response = network.client.post(
        "/api/v1/transactions/a%00b/status",
        json={"status": "approved"},
        headers={"Authorization": f"Bearer {network.api_key}"},
    )

    assert response.status_code == 404, response.get_data(as_text=True)[:300]
    assert list(assert_error_shape(response)) == ["sales_id"]
    assert written(before, row_counts(network.app)) == {}


@pytest.mark.xfail(
    strict=True,
    reason="BUG dispatcher/ledger/csv_batch.py _decoded_lines(): lines are split on LF only, so a file with "
    "CR-only line ends (old Mac/Excel exports) is one unreadable line and none of its sales is recorded",
)
def test_a_csv_with_cr_only_line_ends_records_its_lines(network: Network) -> None:
    lines = [f"{network.click()},cr-{n},1.00" for n in range(2)]

    response = network.client.post(
        "/api/v1/transactions/batch",
        data=("\r".join(lines) + "\r").encode(),
        headers={"Authorization": f"Bearer {network.api_key}", "Content-Type": "text/csv"},
    )

    assert response.get_json()["summary"]["recorded"] == 2, response.get_json()
