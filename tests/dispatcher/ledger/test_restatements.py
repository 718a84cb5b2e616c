"""S2S and CSV reports that restate a recorded order: another status or amount changes it, as the API's status
route would (events, postbacks, the same rules); the same status and amount again is a duplicate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from dispatcher.ledger.status import with_article
from dispatcher.models import Click, Delivery, Transaction, TransactionEvent
from tests.dispatcher.ledger.conftest import Network


def fire(network: Network, click_id: str, **fields: str) -> Any:
    values = {"token": network.s2s_token, "clickid": click_id, "on": "S-1", "sa": "100.00", **fields}
    return network.client.get("/s2s/transaction", query_string=values)


def history(network: Network, order_number: str = "S-1") -> list[tuple[str, str, Decimal, str]]:
    with network.session() as session:
        sale = session.scalars(select(Transaction).where(Transaction.order_number == order_number)).one()
        return [(e.kind, e.status, e.sale_amount, e.channel) for e in sale.events]


def count(network: Network, model: Any) -> int:
    with network.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_url_with_a_new_status_changes_the_order_and_fires_its_postbacks(network: Network) -> None:
    network.postback(events=["sale", "approved", "reversed"])
    click = network.click()
    created = fire(network, click)

    approved = fire(network, click, status="approved")
    reversed_ = fire(network, click, status="reversed")

    assert created.status_code == 201
    sales_id = (created.json or {})["sales_id"]
    assert (approved.status_code, reversed_.status_code) == (200, 200)
    assert approved.json == {
        "sales_id": sales_id,
        "event": "approved",
        "status": "approved",
        "sale_amount": "100.00",
        "commission": "10.00",
        "currency": "USD",
        "deliveries": 1,
        "changed": True,
    }
    assert (reversed_.json or {})["event"] == "reversed" and (reversed_.json or {})["changed"] is True
    assert [kind for kind, *_ in history(network)] == ["created", "approved", "reversed"]
    assert {channel for *_, channel in history(network)} == {"s2s"}
    assert count(network, Delivery) == 3


def test_the_same_status_and_amount_again_is_a_duplicate(network: Network) -> None:
    click = network.click()
    fire(network, click)
    fire(network, click, status="approved")

    again = fire(network, click, status="approved")
    plain = fire(network, click)  # the original sale's URL, without a status: no change asked for

    for response in (again, plain):
        assert response.status_code == 200
        assert response.json is not None
        assert (response.json["status"], response.json["duplicate"]) == ("approved", True)
        assert "changed" not in response.json
    assert len(history(network)) == 2


def test_another_amount_adjusts_the_order(network: Network) -> None:
    click = network.click()
    fire(network, click)

    response = fire(network, click, sa="80.00")

    assert response.status_code == 200
    assert response.json is not None
    assert (response.json["event"], response.json["sale_amount"], response.json["commission"]) == (
        "adjusted",
        "80.00",
        "8.00",
    )
    assert history(network)[-1] == ("adjusted", "pending", Decimal("80.00"), "s2s")


@pytest.mark.parametrize(
    ("moves", "status", "current"),
    [
        (["approved"], "declined", "approved"),
        (["declined"], "approved", "declined"),
        (["approved", "reversed"], "approved", "reversed"),
        (["approved"], "pending", "approved"),
    ],
)
def test_a_status_the_order_cannot_take_is_409_naming_the_current_status(
    network: Network, moves: list[str], status: str, current: str
) -> None:
    click = network.click()
    fire(network, click)
    for move in moves:
        assert fire(network, click, status=move).status_code == 200
    before = history(network)

    response = fire(network, click, status=status)

    assert response.status_code == 409
    assert response.json == {
        "error": f"status: {with_article(current)} transaction cannot become {status}",
        "fields": {"status": f"{with_article(current)} transaction cannot become {status}"},
        "current_status": current,
    }
    assert history(network) == before


def test_an_adjustment_of_a_closed_order_is_409_naming_the_parameter_as_written(network: Network) -> None:
    click = network.click()
    fire(network, click)
    fire(network, click, status="declined")

    response = fire(network, click, sa="5.00")

    assert response.status_code == 409
    assert response.json is not None
    assert response.json["fields"] == {"sa": "a declined transaction cannot be adjusted"}
    assert response.json["current_status"] == "declined"


@pytest.mark.parametrize("status", ["declined", "reversed"])
def test_a_new_order_cannot_be_born_declined_or_reversed(network: Network, status: str) -> None:
    response = fire(network, network.click(), status=status)

    assert response.status_code == 400
    assert response.json is not None
    assert list(response.json["fields"]) == ["status"]
    assert "'S-1' (sale) is not recorded" in response.json["fields"]["status"]
    assert (count(network, Transaction), count(network, TransactionEvent)) == (0, 0)


def test_a_bad_amount_in_a_restatement_is_400_naming_it(network: Network) -> None:
    click = network.click()
    fire(network, click)

    response = fire(network, click, status="approved", sa="1.001")

    assert response.status_code == 400
    assert response.json is not None and list(response.json["fields"]) == ["sa"]
    assert len(history(network)) == 1


def test_a_pixel_carries_a_status_change_too(network: Network) -> None:
    click = network.click()
    fire(network, click)

    response = fire(network, click, status="approved", pixel="1")

    assert (response.status_code, response.mimetype) == (200, "image/gif")
    assert history(network)[-1] == ("approved", "approved", Decimal("100.00"), "pixel")


def upload(network: Network, text: str) -> dict[str, Any]:
    response = network.client.post(
        "/api/v1/transactions/batch",
        data=text.encode(),
        content_type="text/csv",
        headers={"Authorization": f"Bearer {network.api_key}"},
    )
    assert response.status_code == 200, response.data[:500]
    body: dict[str, Any] = json.loads(response.data)
    return body


def test_a_validation_file_changes_each_line_and_reports_each_on_its_own(network: Network) -> None:
    network.postback(events=["approved", "declined", "reversed", "adjusted"])
    clicks = [network.click() for _ in range(4)]
    header = "click_id,order_number,sale_amount,status\n"
    upload(network, header + "".join(f"{click},V-{n},10.00,\n" for n, click in enumerate(clicks)))

    body = upload(
        network,
        header
        + f"{clicks[0]},V-0,10.00,approved\n"  # line 2: approved
        + f"{clicks[1]},V-1,10.00,declined\n"  # line 3: declined
        + f"{clicks[2]},V-2,10.00,pending\n"  # line 4: as it is: a duplicate
        + f"{clicks[3]},V-3,12.00,\n"  # line 5: adjusted
        + f"{clicks[0]},V-0,10.00,reversed\n"  # line 6: reversed, after line 2's approval
        + f"{clicks[1]},V-1,10.00,approved\n"  # line 7: declined cannot become approved
        + f"{network.click()},V-9,10.00,reversed\n",  # line 8: not recorded
    )

    by_line = {row["line"]: row for row in body["results"]}
    assert [by_line[n].get("event") for n in (2, 3, 5, 6)] == ["approved", "declined", "adjusted", "reversed"]
    assert all(by_line[n]["changed"] is True for n in (2, 3, 5, 6))
    assert by_line[4]["duplicate"] is True and by_line[4]["status"] == "pending"
    assert by_line[7]["fields"] == {"status": "a declined transaction cannot become approved"}
    assert by_line[7]["current_status"] == "declined"
    assert list(by_line[8]["fields"]) == ["status"]
    assert body["summary"] == {"lines": 7, "recorded": 0, "changed": 4, "duplicates": 1, "rejected": 2}
    assert [kind for kind, *_ in history(network, "V-0")] == ["created", "approved", "reversed"]
    assert count(network, Delivery) == 4


def test_a_csv_of_1000_status_lines_changes_1000_orders(network: Network) -> None:
    lines = 1000
    network.postback(events=["approved", "declined"])
    now = datetime.now(UTC)
    with network.session() as session:
        session.execute(
            insert(Click),
            [
                {
                    "click_id": f"val-{n}",
                    "program_id": network.program_id,
                    "publisher_id": network.publisher_id,
                    "traffic_source_id": network.source_id,
                    "created_at": now,
                }
                for n in range(lines)
            ],
        )
        session.commit()
    header = "click_id,order_number,sale_amount,status\n"
    recorded = upload(network, header + "".join(f"val-{n},VAL-{n},20.00,\n" for n in range(lines)))
    assert recorded["summary"]["recorded"] == lines

    def status(n: int) -> str:
        return "declined" if n % 10 == 0 else "approved"

    body = upload(network, header + "".join(f"val-{n},VAL-{n},20.00,{status(n)}\n" for n in range(lines)))

    assert body["summary"] == {
        "lines": lines,
        "recorded": 0,
        "changed": lines,
        "duplicates": 0,
        "rejected": 0,
    }
    assert [row["line"] for row in body["results"]] == list(range(2, lines + 2))
    assert {row["status"] for row in body["results"][::10]} == {"declined"}
    with network.session() as session:
        statuses = dict(
            session.execute(select(Transaction.status, func.count()).group_by(Transaction.status)).all()
        )
        changes = session.scalar(
            select(func.count()).select_from(TransactionEvent).where(TransactionEvent.kind != "created")
        )
    assert statuses == {"approved": 900, "declined": 100}
    assert changes == lines
    assert count(network, Delivery) == lines
    again = upload(network, header + "".join(f"val-{n},VAL-{n},20.00,{status(n)}\n" for n in range(lines)))
    assert again["summary"] == {
        "lines": lines,
        "recorded": 0,
        "changed": 0,
        "duplicates": lines,
        "rejected": 0,
    }


def test_a_url_naming_only_the_order_changes_it(network: Network) -> None:
    network.postback(events=["approved"])
    fire(network, network.click(), on="S-7")
    query = {"token": network.s2s_token, "on": "S-7", "status": "approved"}

    response = network.client.get("/s2s/transaction", query_string=query)
    unknown = network.client.get("/s2s/transaction", query_string={**query, "on": "S-8"})

    assert response.status_code == 200, response.json
    assert response.json is not None
    assert (response.json["event"], response.json["changed"], response.json["deliveries"]) == (
        "approved",
        True,
        1,
    )
    # Not recorded, and without an amount it is no new sale: the order is named (as S2S calls it).
    assert unknown.status_code == 400
    assert unknown.json is not None and list(unknown.json["fields"]) == ["on"]
    assert unknown.json["error"].startswith("on: is not a recorded sale of your programs")
    assert unknown.json["error"].endswith(", got 'S-8'")


def test_a_validation_file_may_name_only_orders_and_statuses(network: Network) -> None:
    clicks = [network.click() for _ in range(3)]
    upload(network, "".join(f"{click},OV-{n},10.00\n" for n, click in enumerate(clicks)))

    body = upload(network, "order_number,status\nOV-0,approved\nOV-1,declined\nOV-2,\nOV-9,approved\n")

    by_line = {row["line"]: row for row in body["results"]}
    assert (by_line[2]["status"], by_line[3]["status"]) == ("approved", "declined")
    assert by_line[4]["duplicate"] is True
    # Not recorded, and without an amount it is no new sale: the order is named, not the missing amount.
    assert by_line[5]["fields"] == {
        "order_number": "is not a recorded sale of your programs "
        "(without a sale amount, a report only changes a recorded order)"
    }
    assert by_line[5]["error"].startswith("order_number: is not a recorded sale of your programs")
    assert body["summary"] == {"lines": 4, "recorded": 0, "changed": 2, "duplicates": 1, "rejected": 1}
