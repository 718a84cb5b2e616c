"""GET|POST /s2s/transaction: the same intake for platforms that can only fire a URL, and image pixels."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from dispatcher.models import Transaction
from tests.dispatcher.ledger.conftest import Network


def query(network: Network, **fields: Any) -> dict[str, Any]:
    values = {"token": network.s2s_token, "clickid": network.click(), "on": "S-1", "sa": "40.00"}
    return {**values, **fields}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_sale_fired_as_a_url_is_201_with_the_same_body_as_the_api(network: Network, method: str) -> None:
    network.postback()
    values = query(network, cur="EUR", event="lead", status="approved")
    if method == "GET":
        response = network.client.get("/s2s/transaction", query_string=values)
    else:
        response = network.client.post("/s2s/transaction", data=values)

    assert response.status_code == 201, response.json
    assert response.json is not None
    assert response.json["commission"] == "4.00"
    assert (response.json["currency"], response.json["status"], response.json["deliveries"]) == (
        "EUR",
        "approved",
        1,
    )
    with network.session() as session:
        sale = session.scalars(select(Transaction)).one()
        assert (sale.channel, sale.event_type, sale.order_number) == ("s2s", "lead", "S-1")


def test_the_same_url_fired_twice_is_a_duplicate(network: Network) -> None:
    values = query(network)

    first = network.client.get("/s2s/transaction", query_string=values)
    again = network.client.get("/s2s/transaction", query_string=values)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json == {**(first.json or {}), "duplicate": True}


def test_as_an_image_pixel_it_answers_a_1x1_gif(network: Network) -> None:
    response = network.client.get("/s2s/transaction", query_string=query(network, pixel="1"))

    assert response.status_code == 200
    assert response.mimetype == "image/gif"
    assert response.data.startswith(b"GIF89a")
    assert response.headers["Cache-Control"] == "no-store"
    with network.session() as session:
        assert session.scalars(select(Transaction.channel)).one() == "pixel"


@pytest.mark.parametrize(
    ("fields", "name", "problem"),
    [
        ({"sa": "12.345"}, "sa", "must have at most 2 decimals for USD"),
        ({"sa": ""}, "sa", "is required"),
        ({"on": ""}, "on", "is required"),
        ({"cur": "DOLLARS"}, "cur", "must be an ISO 4217 currency code"),
        ({"clickid": "forged"}, "clickid", "is not a click of this network"),
        ({"ca": "1.00"}, "ca", "is not accepted"),
        ({"et": "not-a-time"}, "et", "must be an ISO 8601 time"),
    ],
)
def test_errors_name_the_parameter_as_written_in_the_url(
    network: Network, fields: dict[str, str], name: str, problem: str
) -> None:
    response = network.client.get("/s2s/transaction", query_string=query(network, **fields))

    assert response.status_code == 400
    assert response.json is not None
    assert list(response.json["fields"]) == [name]
    assert response.json["fields"][name].startswith(problem)
    assert response.json["error"].startswith(f"{name}: ")


@pytest.mark.parametrize("token", [None, "", "garbage", "API_KEY", "s2s_000000000000_nope"])
def test_a_missing_or_bad_token_is_401_json(network: Network, token: str | None) -> None:
    values = query(network)
    if token is None:
        del values["token"]
    else:
        values["token"] = network.api_key if token == "API_KEY" else token

    response = network.client.get("/s2s/transaction", query_string=values)

    assert response.status_code == 401
    assert response.json is not None and response.json["error"].startswith("token: ")
    with network.session() as session:
        assert session.scalars(select(Transaction)).all() == []
