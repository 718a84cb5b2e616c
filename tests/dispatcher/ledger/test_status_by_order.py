"""POST /api/v1/transactions/status: the status route for the transaction advertisers know by order number."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from dispatcher import accounts
from dispatcher.models import Transaction, TransactionEvent
from tests.dispatcher.ledger.conftest import Network


def by_order(network: Network, body: dict[str, Any], api_key: str | None = None) -> Any:
    return network.client.post(
        "/api/v1/transactions/status",
        json=body,
        headers={"Authorization": f"Bearer {api_key or network.api_key}"},
    )


def events(network: Network) -> int:
    with network.session() as session:
        return int(session.scalar(select(func.count()).select_from(TransactionEvent)) or 0)


def second_program(network: Network) -> int:
    with network.session() as session:
        program = accounts.create_program(
            session,
            network.advertiser_id,
            "Shoes EU",
            landing_url="https://shop.example/eu",
            commission="10%",
        )
        session.commit()
        return program.id


def test_an_order_number_is_approved_with_the_answer_of_the_sales_id_route(network: Network) -> None:
    network.postback(events=["approved"])
    sale = network.sale(order_number="A-1")

    response = by_order(network, {"order_number": "A-1", "status": "approved", "sale_amount": "90.00"})

    assert response.status_code == 200, response.json
    assert response.json == {
        "sales_id": sale["sales_id"],
        "event": "approved",
        "status": "approved",
        "sale_amount": "90.00",
        "commission": "9.00",
        "currency": "USD",
        "deliveries": 1,
    }
    with network.session() as session:
        row = session.scalars(select(Transaction)).one()
        assert (row.status, row.events[-1].kind, row.events[-1].channel) == ("approved", "approved", "api")


def test_the_event_names_the_lead_or_the_sale_of_one_order(network: Network) -> None:
    lead = network.sale(order_number="A-1", event="lead")
    sale = network.sale(order_number="A-1")

    as_lead = by_order(network, {"order_number": "A-1", "event": "lead", "status": "declined"})
    by_default = by_order(network, {"order_number": "A-1", "status": "approved"})

    assert (as_lead.json or {})["sales_id"] == lead["sales_id"]
    assert (by_default.json or {})["sales_id"] == sale["sales_id"]


def test_an_order_number_in_several_programs_needs_the_program(network: Network) -> None:
    other = second_program(network)
    network.sale(order_number="A-1")
    theirs = network.sale(order_number="A-1", click_id=network.click(program_id=other))

    ambiguous = by_order(network, {"order_number": "A-1", "status": "approved"})
    named = by_order(network, {"order_number": "A-1", "program_id": other, "status": "approved"})

    assert ambiguous.status_code == 400
    assert ambiguous.json is not None
    problem = ambiguous.json["fields"]["program_id"]
    assert problem.startswith("is required: order 'A-1' (sale) is in several of your programs")
    assert str(other) in problem and str(network.program_id) in problem
    assert named.status_code == 200 and (named.json or {})["sales_id"] == theirs["sales_id"]
    assert events(network) == 3  # two sales and one approval: the ambiguous request wrote nothing


def test_an_unknown_order_or_another_advertisers_is_404_naming_the_order_number(network: Network) -> None:
    network.sale(order_number="A-1")
    with network.session() as session:
        rival_key = accounts.create_advertiser(session, "Rival").api_key
        session.commit()

    unknown = by_order(network, {"order_number": "A-2", "status": "approved"})
    not_theirs = by_order(network, {"order_number": "A-1", "status": "approved"}, api_key=rival_key)
    wrong_program = by_order(network, {"order_number": "A-1", "program_id": 987654, "status": "approved"})

    for response in (unknown, not_theirs, wrong_program):
        assert response.status_code == 404
        assert response.json is not None
        assert response.json["fields"] == {"order_number": "is not a transaction of this advertiser"}
    assert (unknown.json or {})["error"] == "order_number: no transaction 'A-2' (sale) of this advertiser"
    assert events(network) == 1


def test_a_change_that_does_not_fit_is_409_naming_the_current_status(network: Network) -> None:
    network.sale(order_number="A-1")
    assert by_order(network, {"order_number": "A-1", "status": "declined"}).status_code == 200

    response = by_order(network, {"order_number": "A-1", "status": "approved"})

    assert response.status_code == 409
    assert response.json == {
        "error": "status: a declined transaction cannot become approved",
        "fields": {"status": "a declined transaction cannot become approved"},
        "current_status": "declined",
    }


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({"status": "approved"}, "order_number", "is required"),
        ({"order_number": "A-1"}, "status", "is required"),
        ({"order_number": "A-1", "status": "paid"}, "status", "must be one of approved, declined, reversed"),
        (
            {"order_number": "A-1", "status": "approved", "event": "click"},
            "event",
            "must be one of sale, lead",
        ),
        ({"order_number": "A-1", "status": "approved", "program_id": "seven"}, "program_id", "must be a"),
        ({"order_number": "A-1", "sale_amount": "1.001"}, "sale_amount", "must have at most 2 decimals"),
        ({"order_number": ["A-1"], "status": "approved"}, "order_number", "must be text"),
        ({"order_number": "A-1", "status": "approved", "sales_id": "x"}, "sales_id", "is not a field"),
    ],
)
def test_a_bad_value_is_400_naming_the_field_and_writes_nothing(
    network: Network, body: dict[str, Any], field: str, problem: str
) -> None:
    network.sale(order_number="A-1")

    response = by_order(network, body)

    assert response.status_code == 400, response.json
    assert response.json is not None
    assert list(response.json["fields"]) == [field]
    assert response.json["fields"][field].startswith(problem)
    assert response.json["error"].startswith(f"{field}: ")
    assert events(network) == 1


def test_without_the_advertisers_key_it_is_401(network: Network) -> None:
    network.sale(order_number="A-1")

    response = network.client.post("/api/v1/transactions/status", json={"order_number": "A-1"})

    assert response.status_code == 401
    assert events(network) == 1
