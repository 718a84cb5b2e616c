"""S2S URLs in Integr8's words (`secure`, `transaction_id`, its clickless table), sub ids of clickless sales,
unknown parameters listed back, and placeholders a platform left unfilled refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from dispatcher.models import Click, Program, Transaction
from dispatcher.web.s2s_params import ALIASES, OTHER_NAMES, QUERY_NAMES, TOKEN_NAMES
from tests.dispatcher.ledger.conftest import Network


def fire(network: Network, **query: str) -> Any:
    return network.client.get("/s2s/transaction", query_string=query)


@pytest.fixture
def clickless(network: Network) -> Network:
    with network.session() as session:
        session.execute(update(Program).values(allow_clickless=True, allow_advertiser_commission=True))
        session.commit()
    return network


def test_an_integr8_url_records_the_sale(network: Network) -> None:
    click = network.click()

    response = fire(network, secure=network.s2s_token, transaction_id=click, on="I-1", sa="50.00")

    assert response.status_code == 201, response.json
    assert response.json is not None and "ignored" not in response.json
    with network.session() as session:
        sale = session.scalars(select(Transaction)).one()
        assert (sale.order_number, sale.channel) == ("I-1", "s2s")


def test_an_integr8_clickless_report_credits_the_publisher_with_its_sub_ids(clickless: Network) -> None:
    network = clickless
    response = fire(
        network,
        secure=network.s2s_token,
        on="I-2",
        revenue="80.00",
        payout="6.00",
        publisher=str(network.publisher_id),
        ts=str(network.source_id),
        external_transaction_id="their-click-9",
        sub_id="campaign-4",
        conversion_ip="203.0.113.7",
        user_agent="Mozilla/5.0 (X11)",
        session_time="1764700000",
        user_email="a@b.example",
    )

    assert response.status_code == 201, response.json
    assert response.json is not None
    assert response.json["commission"] == "6.00"
    assert response.json["ignored"] == ["session_time", "user_email"]
    with network.session() as session:
        sale = session.scalars(select(Transaction)).one()
        click = session.get_one(Click, sale.click_pk)
        assert (sale.sale_amount, sale.publisher_id, sale.traffic_source_id) == (
            80,
            network.publisher_id,
            network.source_id,
        )
        assert (click.fobs, click.fobs2, click.ip, click.user_agent) == (
            "their-click-9",
            "campaign-4",
            "203.0.113.7",
            "Mozilla/5.0 (X11)",
        )
        assert (click.program_id, click.created_at) == (sale.program_id, sale.event_time)


@pytest.mark.parametrize("channel", ["api", "s2s"])
def test_our_own_names_carry_all_five_sub_ids_the_same_way(clickless: Network, channel: str) -> None:
    network = clickless
    subs = {f"fobs{n if n > 1 else ''}": f"sub-{n}" for n in range(1, 6)}
    who = {"publisher_id": network.publisher_id, "traffic_source_id": network.source_id}
    if channel == "api":
        response = network.report({"order_number": "O-1", "sale_amount": "10.00", **who, **subs})
    else:
        response = fire(
            network, token=network.s2s_token, on="O-1", sa="10.00", pub=str(who["publisher_id"]),
            ts=str(who["traffic_source_id"]), **subs,
        )  # fmt: skip

    assert response.status_code == 201, response.json
    with network.session() as session:
        sale = session.scalars(select(Transaction)).one()
        click = session.get_one(Click, sale.click_pk)
        assert [click.fobs, click.fobs2, click.fobs3, click.fobs4, click.fobs5] == list(subs.values())


@pytest.mark.parametrize("channel", ["api", "s2s"])
def test_sub_ids_with_a_click_are_refused_the_click_has_its_own(network: Network, channel: str) -> None:
    click = network.click(fobs="from-the-link")
    if channel == "api":
        response = network.report({"click_id": click, "order_number": "O-1", "sale_amount": "1", "fobs": "x"})
    else:
        response = fire(network, token=network.s2s_token, clickid=click, on="O-1", sa="1", fobs="x")

    assert response.status_code == 400
    assert response.json is not None
    assert response.json["fields"] == {
        "fobs": "is only for a transaction without a click_id (the click has its own)"
    }


def test_a_bad_ip_is_refused_naming_the_parameter_as_written(clickless: Network) -> None:
    network = clickless
    query = {"token": network.s2s_token, "on": "O-1", "sa": "1", "pub": str(network.publisher_id)}

    response = fire(network, ts=str(network.source_id), conversion_ip="not-an-ip", **query)

    assert response.status_code == 400
    assert response.json is not None
    assert list(response.json["fields"]) == ["conversion_ip"]
    assert response.json["fields"]["conversion_ip"].startswith("must be an IP address")


def test_unknown_parameters_are_listed_in_every_json_answer(network: Network) -> None:
    click = network.click()
    base = {"token": network.s2s_token, "clickid": click, "on": "U-1"}

    recorded = fire(network, sa="5.00", amount="5.00", utm_source="x", **base)
    misspelt = fire(network, amount="5.00", **{**base, "on": "U-2"})

    assert recorded.status_code == 201
    assert (recorded.json or {})["ignored"] == ["amount", "utm_source"]
    assert misspelt.status_code == 400
    assert misspelt.json == {
        "error": "sa: is required",
        "fields": {"sa": "is required"},
        "ignored": ["amount"],
    }


@pytest.mark.parametrize(
    ("name", "value", "placeholder"),
    [
        ("transaction_id", "REPLACE", "REPLACE"),
        ("transaction_id", "{transaction_id}", "{transaction_id}"),
        ("clickid", "{clickid}", "{clickid}"),
        ("clickid", "{{click_id}}", "{{click_id}}"),
        ("on", "order-{order_id}", "{order_id}"),
        ("sa", "#price#", "#price#"),
        ("sub_id", "OPTIONAL", "OPTIONAL"),
        ("fobs", "%7Bcf_click_id%7D", "%7Bcf_click_id%7D"),
    ],
)
def test_a_placeholder_left_in_a_value_is_400_saying_the_platform_did_not_fill_it_in(
    network: Network, name: str, value: str, placeholder: str
) -> None:
    query = {"secure": network.s2s_token, "transaction_id": network.click(), "on": "P-1", "sa": "5.00"}
    query.pop("transaction_id" if name == "clickid" else "", None)

    response = fire(network, **{**query, name: value})

    assert response.status_code == 400
    assert response.json is not None
    assert response.json["fields"] == {
        name: f"is the placeholder {placeholder} that the platform did not fill in: put the value there"
    }
    with network.session() as session:
        assert session.scalars(select(Transaction)).all() == []


def test_a_user_agent_holding_braces_or_hashes_is_text_unless_it_is_only_a_placeholder(
    clickless: Network,
) -> None:
    network = clickless
    query = {"secure": network.s2s_token, "revenue": "8.00", "publisher": str(network.publisher_id)}
    query["ts"] = str(network.source_id)
    agent = "Mozilla/5.0 (App{x}; #build#)"

    kept = fire(network, **query, on="UA-1", user_agent=agent)
    refused = fire(network, **query, on="UA-2", user_agent="{user_agent}")

    assert kept.status_code == 201, kept.json
    assert refused.status_code == 400 and refused.json is not None
    assert "user_agent" in refused.json["fields"]


def test_lower_case_words_are_values_not_placeholders(network: Network) -> None:
    response = fire(network, token=network.s2s_token, clickid=network.click(), on="replace", sa="5.00")

    assert response.status_code == 201, response.json


def test_a_placeholder_with_a_bad_token_is_401_first(network: Network) -> None:
    response = fire(network, secure="YOUR_TOKEN", transaction_id="REPLACE", on="P-1", sa="5.00")

    assert response.status_code == 401


def test_one_thing_named_twice_with_two_values_is_400(network: Network) -> None:
    query = {"token": network.s2s_token, "clickid": network.click(), "transaction_id": "other", "on": "T-1"}

    response = fire(network, sa="5.00", **query)

    assert response.status_code == 400
    assert response.json is not None
    assert list(response.json["fields"]) == ["transaction_id"]
    assert "gives clickid a second value" in response.json["fields"]["transaction_id"]


def test_the_readme_table_lists_every_name_and_alias_the_url_takes() -> None:
    text = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    table = text[text.index("| ours | Integr8's | meaning |") :].split("\n\n", 1)[0].splitlines()[2:]
    ours: set[str] = set()
    aliases: dict[str, str] = {}
    for row in table:
        names, alias = (cell.strip() for cell in row.strip("|").split("|")[:2])
        written = [name.strip("` ") for name in names.split(",")]
        ours.update(written)
        if alias:
            aliases[alias.strip("`")] = written[0]

    assert ours == {*QUERY_NAMES, *TOKEN_NAMES[:1], *OTHER_NAMES}
    assert aliases == {**ALIASES, TOKEN_NAMES[1]: TOKEN_NAMES[0]}


def test_a_repeated_clickless_report_records_neither_a_second_sale_nor_a_second_click(
    clickless: Network,
) -> None:
    network = clickless
    query = {
        "secure": network.s2s_token,
        "on": "R-1",
        "revenue": "10.00",
        "publisher": str(network.publisher_id),
        "ts": str(network.source_id),
        "external_transaction_id": "their-click",
    }

    first, again = fire(network, **query), fire(network, **query)

    assert (first.status_code, again.status_code) == (201, 200)
    assert (again.json or {})["duplicate"] is True
    with network.session() as session:
        assert len(session.scalars(select(Transaction)).all()) == 1
        assert [click.fobs for click in session.scalars(select(Click))] == ["their-click"]
