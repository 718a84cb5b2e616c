"""POST /api/v1/transactions/<sales_id>/status: the status machine, amount adjustments, and their events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from dispatcher import accounts
from dispatcher.ledger.status import with_article
from dispatcher.models import Transaction
from tests.dispatcher.ledger.conftest import Network

MOVES = {
    "approved": [],
    "declined": [("pending", "declined")],
    "reversed": [("pending", "approved"), ("approved", "reversed")],
}


def sale_in(network: Network, status: str) -> str:
    """A fresh sale of 100.00 (10% commission) brought to `status` through the API."""
    sales_id: str = network.sale(status="approved" if status == "approved" else "pending")["sales_id"]
    for _, target in MOVES.get(status, []):
        assert network.change(sales_id, {"status": target}).status_code == 200
    return sales_id


def history(network: Network, sales_id: str) -> list[tuple[str, str, Decimal, Decimal]]:
    with network.session() as session:
        sale = session.scalars(select(Transaction).where(Transaction.sales_id == sales_id)).one()
        return [(e.kind, e.status, e.sale_amount, e.commission) for e in sale.events]


@pytest.mark.parametrize(
    ("current", "target", "code"),
    [
        ("pending", "approved", 200),
        ("pending", "declined", 200),
        ("pending", "reversed", 409),
        ("pending", "pending", 400),
        ("approved", "reversed", 200),
        ("approved", "declined", 409),
        ("approved", "approved", 409),
        ("declined", "approved", 409),
        ("declined", "reversed", 409),
        ("declined", "declined", 409),
        ("reversed", "approved", 409),
        ("reversed", "declined", 409),
        ("reversed", "reversed", 409),
    ],
)
def test_the_status_machine(network: Network, current: str, target: str, code: int) -> None:
    sales_id = sale_in(network, current)
    before = history(network, sales_id)

    response = network.change(sales_id, {"status": target})

    assert response.status_code == code, response.json
    assert response.json is not None
    after = history(network, sales_id)
    if code == 200:
        assert response.json["status"] == target
        assert after == [*before, (target, target, Decimal("100.00"), Decimal("10.00"))]
    else:
        assert after == before
        assert set(response.json) >= {"error", "fields"}
    if code == 409:
        assert response.json["current_status"] == current
        assert current in response.json["error"]


def test_a_change_answers_the_transaction_as_it_now_is(network: Network) -> None:
    sales_id = sale_in(network, "pending")

    response = network.change(sales_id, {"status": "approved"})

    assert response.json == {
        "sales_id": sales_id,
        "event": "approved",
        "status": "approved",
        "sale_amount": "100.00",
        "commission": "10.00",
        "currency": "USD",
        "deliveries": 0,
    }


@pytest.mark.parametrize("current", ["pending", "approved"])
def test_an_amount_adjustment_recomputes_the_commission_and_appends_an_adjusted_event(
    network: Network, current: str
) -> None:
    sales_id = sale_in(network, current)

    response = network.change(sales_id, {"sale_amount": "80.00"})

    assert response.status_code == 200, response.json
    assert response.json is not None
    assert (response.json["event"], response.json["status"]) == ("adjusted", current)
    assert (response.json["sale_amount"], response.json["commission"]) == ("80.00", "8.00")
    assert history(network, sales_id)[-1] == ("adjusted", current, Decimal("80.00"), Decimal("8.00"))


def test_an_approval_may_carry_a_new_amount_in_the_same_event(network: Network) -> None:
    sales_id = sale_in(network, "pending")

    response = network.change(sales_id, {"status": "approved", "sale_amount": 55})

    assert response.status_code == 200
    assert history(network, sales_id)[-1] == ("approved", "approved", Decimal("55.00"), Decimal("5.50"))


@pytest.mark.parametrize("current", ["declined", "reversed"])
def test_a_closed_transaction_cannot_be_adjusted(network: Network, current: str) -> None:
    sales_id = sale_in(network, current)

    response = network.change(sales_id, {"sale_amount": "1.00"})

    assert response.status_code == 409
    assert response.json is not None
    assert response.json["fields"] == {
        "sale_amount": f"{with_article(current)} transaction cannot be adjusted"
    }
    assert response.json["current_status"] == current


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({}, "status", "is required"),
        ({"status": "paid"}, "status", "must be one of approved, declined, reversed"),
        ({"sale_amount": "-5"}, "sale_amount", "must not be negative"),
        ({"sale_amount": "1.001"}, "sale_amount", "must have at most 2 decimals for USD"),
        ({"status": "approved", "commission": "1.00"}, "commission", "is not accepted"),
        ({"status": "approved", "note": "x"}, "note", "is not a field"),
    ],
)
def test_a_bad_change_is_400_and_records_nothing(
    network: Network, body: dict[str, Any], field: str, problem: str
) -> None:
    sales_id = sale_in(network, "pending")

    response = network.change(sales_id, body)

    assert response.status_code == 400
    assert response.json is not None
    assert response.json["fields"][field].startswith(problem)
    assert len(history(network, sales_id)) == 1


def test_an_unknown_sales_id_or_another_advertisers_is_404(network: Network) -> None:
    sales_id = sale_in(network, "pending")
    with network.session() as session:
        rival_key = accounts.create_advertiser(session, "Rival").api_key

    unknown = network.change("no-such-sale", {"status": "approved"})
    not_theirs = network.client.post(
        f"/api/v1/transactions/{sales_id}/status",
        json={"status": "approved"},
        headers={"Authorization": f"Bearer {rival_key}"},
    )

    assert (unknown.status_code, not_theirs.status_code) == (404, 404)
    assert not_theirs.json is not None and not_theirs.json["fields"] == {
        "sales_id": "is not a transaction of this advertiser"
    }
    assert len(history(network, sales_id)) == 1


def test_status_changes_fire_the_postbacks_that_subscribe_to_them(network: Network) -> None:
    network.postback(events=["approved", "reversed"])
    sales_id = sale_in(network, "pending")

    approved = network.change(sales_id, {"status": "approved"})
    reversed_ = network.change(sales_id, {"status": "reversed"})
    adjusted = network.change(sale_in(network, "pending"), {"sale_amount": "1.00"})

    assert [r.json["deliveries"] for r in (approved, reversed_, adjusted) if r.json] == [1, 1, 0]
