"""GET /api/v1/transactions and /<sales_id>: an advertiser reads its own transactions, never another's."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from dispatcher import accounts
from dispatcher.models import Program
from tests.dispatcher.ledger.conftest import Network


def listed(network: Network, api_key: str | None = None, **query: str) -> Any:
    headers = {"Authorization": f"Bearer {api_key or network.api_key}"}
    return network.client.get("/api/v1/transactions", query_string=query, headers=headers)


def past_sale(network: Network, order_number: str, when: str, **fields: str) -> dict[str, Any]:
    """A clickless sale (a click cannot be older than now) at a time in the past."""
    with network.session() as session:
        session.execute(update(Program).values(allow_clickless=True))
        session.commit()
    body = {
        "order_number": order_number,
        "sale_amount": "100.00",
        "publisher_id": network.publisher_id,
        "traffic_source_id": network.source_id,
        "event_time": when,
        **fields,
    }
    response = network.report(body)
    assert response.status_code == 201, response.json
    answer: dict[str, Any] = response.json  # type: ignore[assignment]
    return answer


def sales_ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.json
    return [row["sales_id"] for row in response.json["transactions"]]


@pytest.fixture
def rival(network: Network) -> dict[str, Any]:
    """Another advertiser with a program and a sale of its own, on the same publisher's click."""
    with network.session() as session:
        other = accounts.create_advertiser(session, "Rival Shop")
        program = accounts.create_program(
            session, other.advertiser.id, "Hats", landing_url="https://hats.example/", commission="5.00"
        )
        session.commit()
        key, program_id = other.api_key, program.id
    body = {"click_id": network.click(program_id=program_id), "order_number": "R-1", "sale_amount": "10.00"}
    sale = network.report(body, api_key=key)
    assert sale.status_code == 201
    return {"api_key": key, "program_id": program_id, "sales_id": (sale.json or {})["sales_id"]}


def test_an_advertiser_lists_its_own_transactions_newest_first(
    network: Network, rival: dict[str, Any]
) -> None:
    first = past_sale(network, "A-1", "2026-11-20T14:30:00Z")
    second = network.sale(order_number="A-2", event="lead", sale_amount="0")

    response = listed(network)

    assert sales_ids(response) == [second["sales_id"], first["sales_id"]]
    assert response.json["next_before"] is None
    row = response.json["transactions"][1]
    assert row == {
        **row,
        "sales_id": first["sales_id"],
        "order_number": "A-1",
        "program_id": network.program_id,
        "event": "sale",
        "status": "pending",
        "sale_amount": "100.00",
        "commission": "10.00",
        "currency": "USD",
        "event_time": "2026-11-20T14:30:00Z",
        "click_id": None,
        "publisher_id": network.publisher_id,
        "channel": "api",
    }
    assert "traffic_source_id" not in row
    assert len(response.json["transactions"][0]["click_id"]) == 22
    assert sales_ids(listed(network, api_key=rival["api_key"])) == [rival["sales_id"]]


def test_filters_combine(network: Network, rival: dict[str, Any]) -> None:
    old = past_sale(network, "F-1", "2026-10-31T23:59:59Z")
    lead = past_sale(network, "F-1", "2026-11-01T00:00:00Z", event="lead")
    approved = past_sale(network, "F-2", "2026-11-30T12:00:00Z", status="approved")

    assert sales_ids(listed(network, order_number="F-1")) == [lead["sales_id"], old["sales_id"]]
    assert sales_ids(listed(network, order_number="F-1", event="lead")) == [lead["sales_id"]]
    assert sales_ids(listed(network, status="approved")) == [approved["sales_id"]]
    assert sales_ids(listed(network, **{"from": "2026-11-01", "to": "2026-11-30"})) == [
        approved["sales_id"],
        lead["sales_id"],
    ]
    assert sales_ids(listed(network, to="2026-10-31T23:59:59Z")) == [old["sales_id"]]
    assert sales_ids(listed(network, program_id=str(network.program_id), status="")) == sales_ids(
        listed(network)
    )
    # Another advertiser's program, or its order number: nothing, as for a program that does not exist.
    assert sales_ids(listed(network, program_id=str(rival["program_id"]))) == []
    assert sales_ids(listed(network, order_number="R-1")) == []


def test_pages_are_keyset_pages_that_cover_everything_once(network: Network) -> None:
    made = [network.sale(order_number=f"P-{n}")["sales_id"] for n in range(120)]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        response = listed(network, **({"before": cursor} if cursor else {}))
        seen += sales_ids(response)
        pages += 1
        if response.json["next_before"] is None:
            break
        cursor = str(response.json["next_before"])
    assert pages == 3
    assert seen == made[::-1]


@pytest.mark.parametrize(
    ("query", "field", "problem"),
    [
        ({"status": "paid"}, "status", "must be one of pending, approved, declined, reversed"),
        ({"event": "click"}, "event", "must be one of sale, lead"),
        ({"program_id": "seven"}, "program_id", "must be a whole number"),
        ({"program_id": "0"}, "program_id", "must be a positive id"),
        ({"before": "99999999999999999999"}, "before", "is not an id (too large)"),
        ({"from": "yesterday"}, "from", "must be a date like 2026-11-01 or a time"),
        ({"to": "2026-02-30"}, "to", "must be a date like 2026-11-01 or a time"),
        # Past the last moment there is in UTC: refused, never taken as "no filter" (which listed everything).
        ({"from": "9999-12-31T23:00:00-05:00"}, "from", "is past the last date there is"),
        ({"order_number": "a\x01b"}, "order_number", "must not contain control characters"),
        ({"order_number": "x" * 256}, "order_number", "must be at most 255 characters"),
        ({"sales_id": "x"}, "sales_id", "is not a filter; known: order_number, status"),
    ],
)
def test_a_bad_filter_is_400_naming_the_parameter_and_the_value(
    network: Network, query: dict[str, str], field: str, problem: str
) -> None:
    response = listed(network, **query)

    assert response.status_code == 400
    assert response.json is not None
    assert list(response.json["fields"]) == [field]
    assert response.json["fields"][field].startswith(problem)
    assert response.json["error"].startswith(f"{field}: ") and "got '" in response.json["error"]


def test_one_transaction_with_its_history(network: Network) -> None:
    sale = network.sale(order_number="H-1")
    assert network.change(sale["sales_id"], {"status": "approved", "sale_amount": "80.00"}).status_code == 200

    response = network.client.get(
        f"/api/v1/transactions/{sale['sales_id']}", headers={"Authorization": f"Bearer {network.api_key}"}
    )

    assert response.status_code == 200, response.json
    body = response.json
    assert body is not None
    assert (body["sales_id"], body["status"], body["sale_amount"], body["commission"]) == (
        sale["sales_id"],
        "approved",
        "80.00",
        "8.00",
    )
    assert [(e["kind"], e["status"], e["sale_amount"], e["channel"]) for e in body["events"]] == [
        ("created", "pending", "100.00", "api"),
        ("approved", "approved", "80.00", "api"),
    ]


@pytest.mark.parametrize("which", ["rival's", "unknown", "not a sales id"])
def test_another_advertisers_or_a_missing_sales_id_is_404(
    network: Network, rival: dict[str, Any], which: str
) -> None:
    sales_id = {"rival's": rival["sales_id"], "unknown": "nope", "not a sales id": "a b%00" + "x" * 40}[which]

    response = network.client.get(
        f"/api/v1/transactions/{sales_id}", headers={"Authorization": f"Bearer {network.api_key}"}
    )

    assert response.status_code == 404
    assert response.json is not None
    assert response.json["fields"] == {"sales_id": "is not a transaction of this advertiser"}
    assert rival["sales_id"] not in response.get_data(as_text=True) or which == "rival's"


@pytest.mark.parametrize("path", ["/api/v1/transactions", "/api/v1/transactions/nope"])
@pytest.mark.parametrize("credential", [None, "s2s", "adv_000000000000_nope"])
def test_without_the_api_key_it_is_401(network: Network, path: str, credential: str | None) -> None:
    token = network.s2s_token if credential == "s2s" else credential
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    response = network.client.get(path, headers=headers)

    assert response.status_code == 401
    assert response.json is not None and response.json["error"].startswith("Authorization: ")
