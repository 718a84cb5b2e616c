"""Conversions: the publisher's transactions with commission, totals and postback outcome (API and page),
keyset pages, filters, another publisher's never shown, and the exports (CSV, ClickFlare) parsed back."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dispatcher.db import get_db
from tests.dispatcher import factories
from tests.portal.conftest import Account


@dataclass(frozen=True)
class Book:
    shop: int
    euro_shop: int
    source: int
    approved: str  # sales ids
    pending: str
    reversed_: str
    declined: str
    txid_of_approved: str


def _sale(session: Any, owner: Any, shop: Any, *, fobs: str | None = None, **fields: Any) -> Any:
    click = factories.click(session, owner, shop, fobs=fobs, fobs2=f"alt-{fobs}") if fobs else None
    sale = factories.transaction(session, owner, shop, click_pk=click.id if click else None, **fields)
    return sale, factories.event(session, sale)


@pytest.fixture
def book(app: Flask, publisher: Account, other: Account) -> Book:
    """Four conversions of `publisher` over three days in two currencies, and one of `other`."""
    with get_db(app).session() as session:
        owner = session.get(factories.Publisher, publisher.id)
        shop = factories.program(session, name="Acme Shoes")
        euro_shop = factories.program(session, name="Euro Books", currency="EUR")
        source = factories.traffic_source(session, owner, name="Newsletter")
        hook = factories.postback(session, owner)
        approved, first = _sale(
            session,
            owner,
            shop,
            fobs="cf-1",
            status="approved",
            traffic_source_id=source.id,
            order_number="=HYPERLINK(1)",  # hostile in a spreadsheet
            event_time=datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
        )
        factories.delivery(session, hook, first, state="succeeded")
        pending, second = _sale(
            session,
            owner,
            shop,
            fobs="cf-2",
            commission=Decimal("2.50"),
            sale_amount=Decimal("25.00"),
            event_time=datetime(2026, 11, 2, 9, 30, 0, 250_000, tzinfo=UTC),  # a report with milliseconds
        )
        factories.delivery(session, hook, second, state="failed")
        reversed_, _ = _sale(
            session,
            owner,
            euro_shop,
            status="reversed",
            currency="EUR",
            commission=Decimal("5.00"),
            event_time=datetime(2026, 11, 2, 23, 59, tzinfo=UTC),
        )
        declined, _ = _sale(
            session,
            owner,
            shop,
            fobs="cf-4",
            status="declined",
            event_time=datetime(2026, 11, 3, 0, 0, tzinfo=UTC),
        )
        stranger = session.get(factories.Publisher, other.id)
        _sale(session, stranger, shop, fobs="cf-1", order_number="NOT-MINE")
        session.commit()
        return Book(
            shop.id,
            euro_shop.id,
            source.id,
            approved.sales_id,
            pending.sales_id,
            reversed_.sales_id,
            declined.sales_id,
            f"{approved.sales_id}-{first.id}",
        )


def listed(client: FlaskClient, owner: Account, **args: str) -> dict[str, Any]:
    response = client.get("/api/v1/conversions", query_string=args, headers=owner.auth)
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.json
    return body


def test_the_api_lists_the_publishers_own_conversions_newest_first(
    client: FlaskClient, publisher: Account, other: Account, book: Book
) -> None:
    body = listed(client, publisher)

    assert [row["sales_id"] for row in body["conversions"]] == [
        book.declined,
        book.reversed_,
        book.pending,
        book.approved,
    ]
    first = body["conversions"][-1]
    assert first["txid"] == book.txid_of_approved
    assert (first["status"], first["commission"], first["currency"]) == ("approved", "10.00", "USD")
    assert first["program_name"] == "Acme Shoes"
    assert first["traffic_source_id"] == book.source
    assert first["sub_ids"]["fobs"] == "cf-1"
    assert first["event_time"] == "2026-11-01T12:00:00Z"
    assert first["postbacks"] == {"outcome": "succeeded", "succeeded": 1, "failed": 0, "pending": 0}
    assert body["conversions"][-2]["postbacks"]["outcome"] == "failed"
    assert body["conversions"][0]["postbacks"]["outcome"] == "none"
    assert body["next_before"] is None
    assert [row["order_number"] for row in listed(client, other)["conversions"]] == ["NOT-MINE"]


def test_totals_split_commission_by_status_and_keep_currencies_apart(
    client: FlaskClient, publisher: Account, book: Book
) -> None:
    totals = listed(client, publisher)["totals"]

    overall = {total["currency"]: total for total in totals["overall"]}
    assert overall["USD"]["conversions"] == 3
    assert overall["USD"]["sale_amount"] == "225.00"
    assert overall["USD"]["commission"] == {
        "pending": "2.50",
        "approved": "10.00",
        "declined": "10.00",
        "reversed": "0.00",
    }
    assert overall["EUR"]["commission"]["reversed"] == "5.00"
    assert [(t["key"], t["currency"]) for t in totals["by_day"]] == [
        ("2026-11-03", "USD"),
        ("2026-11-02", "EUR"),
        ("2026-11-02", "USD"),
        ("2026-11-01", "USD"),
    ]
    by_source = {(t["label"], t["currency"]): t["conversions"] for t in totals["by_traffic_source"]}
    assert by_source == {
        ("Newsletter", "USD"): 1,
        ("No traffic source", "USD"): 2,
        ("No traffic source", "EUR"): 1,
    }
    by_program = {(t["label"], t["currency"]): t["conversions"] for t in totals["by_program"]}
    assert by_program == {("Acme Shoes", "USD"): 3, ("Euro Books", "EUR"): 1}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"status": "approved"}, ["approved"]),
        ({"from": "2026-11-02", "to": "2026-11-02"}, ["reversed_", "pending"]),
        ({"from": "2026-11-03"}, ["declined"]),
        ({"sub_id": "alt-cf-2"}, ["pending"]),
        ({"sub_id": "cf-1"}, ["approved"]),  # the other publisher's cf-1 is not theirs
    ],
)
def test_filters(
    client: FlaskClient, publisher: Account, book: Book, args: dict[str, str], expected: list[str]
) -> None:
    body = listed(client, publisher, **args)
    assert [row["sales_id"] for row in body["conversions"]] == [getattr(book, name) for name in expected]
    assert sum(total["conversions"] for total in body["totals"]["overall"]) == len(expected)


def test_filters_by_program_and_traffic_source(client: FlaskClient, publisher: Account, book: Book) -> None:
    euro = listed(client, publisher, program_id=str(book.euro_shop))["conversions"]
    assert [row["sales_id"] for row in euro] == [book.reversed_]
    sourced = listed(client, publisher, traffic_source_id=str(book.source))["conversions"]
    assert [row["sales_id"] for row in sourced] == [book.approved]


@pytest.mark.parametrize(
    ("args", "field", "value"),
    [
        ({"status": "paid"}, "status", "paid"),
        ({"from": "yesterday"}, "from", "yesterday"),
        ({"from": "2026-11-05", "to": "2026-11-01"}, "to", "2026-11-01"),
        ({"program_id": "abc"}, "program_id", "abc"),
        ({"sub_id": "s" * 256}, "sub_id", "s" * 40),
        ({"format": "xlsx"}, "format", "xlsx"),
        ({"format": "clickflare", "click_id": "cid"}, "click_id", "cid"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(
    client: FlaskClient, publisher: Account, args: dict[str, str], field: str, value: str
) -> None:
    response = client.get("/api/v1/conversions", query_string=args, headers=publisher.auth)
    assert response.status_code == 400
    assert field in response.json["fields"]
    assert value in response.json["error"] + str(response.json["fields"])


def test_without_a_token_the_api_answers_401(client: FlaskClient) -> None:
    assert client.get("/api/v1/conversions").status_code == 401


def test_pages_are_keyset_cursors_that_neither_skip_nor_repeat(
    app: Flask, client: FlaskClient, publisher: Account
) -> None:
    with get_db(app).session() as session:
        owner = session.get(factories.Publisher, publisher.id)
        shop = factories.program(session)
        made = [factories.transaction(session, owner, shop).sales_id for _ in range(60)]
        session.commit()

    first = listed(client, publisher)
    second = listed(client, publisher, before=str(first["next_before"]))

    assert len(first["conversions"]) == 50 and len(second["conversions"]) == 10
    assert second["next_before"] is None
    seen = [row["sales_id"] for row in first["conversions"] + second["conversions"]]
    assert seen == list(reversed(made))


def download(client: FlaskClient, owner: Account, **args: str) -> str:
    response = client.get("/api/v1/conversions", query_string=args, headers=owner.auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return response.get_data(as_text=True)


def test_the_csv_export_holds_every_conversion_and_defuses_formulas(
    client: FlaskClient, publisher: Account, book: Book
) -> None:
    rows = list(csv.DictReader(io.StringIO(download(client, publisher, format="csv"))))

    assert [row["sales_id"] for row in rows] == [book.declined, book.reversed_, book.pending, book.approved]
    approved = rows[-1]
    assert approved["order_number"] == "'=HYPERLINK(1)"
    assert (approved["commission"], approved["currency"], approved["postbacks"]) == (
        "10.00",
        "USD",
        "succeeded",
    )
    assert (approved["fobs"], approved["fobs2"], approved["txid"]) == (
        "cf-1",
        "alt-cf-1",
        book.txid_of_approved,
    )
    assert rows[1]["fobs"] == ""  # a clickless sale


def test_the_clickflare_export_is_the_trackers_upload_format(
    client: FlaskClient, publisher: Account, book: Book
) -> None:
    lines = list(csv.reader(io.StringIO(download(client, publisher, format="clickflare"))))

    # click_id,payout,transaction_id,conversion_type,timestamp; no header. The declined sale is left out
    # (it earned nothing) and so is the reversed one (and it has no click id to match anyway).
    assert [line[0] for line in lines] == ["cf-2", "cf-1"]
    click_id, payout, txid, kind, when = lines[1]
    assert (payout, txid, kind) == ("10.00", book.txid_of_approved, "sale")
    assert datetime.fromisoformat(when) == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    # Whole seconds with the offset, as in ClickFlare's own example (2025-10-02T14:30:00+02:00).
    assert lines[0][4] == "2026-11-02T09:30:00+00:00"
    assert all(len(line) == 5 for line in lines)

    other_field = list(
        csv.reader(io.StringIO(download(client, publisher, format="clickflare", click_id="fobs2")))
    )
    assert [line[0] for line in other_field] == ["alt-cf-2", "alt-cf-1"]
    # Not even when asked for: an uploaded line of a declined sale would add its payout in the tracker.
    declined = download(client, publisher, format="clickflare", status="declined")
    assert declined == ""


def test_the_portal_page_shows_conversions_totals_and_offers_the_files(
    client: FlaskClient, publisher: Account, other: Account, book: Book
) -> None:
    from tests.portal.conftest import log_in

    log_in(client, publisher)
    page = client.get("/portal/conversions").get_data(as_text=True)

    assert "Acme Shoes" in page and "Euro Books" in page and "NOT-MINE" not in page
    assert "=HYPERLINK(1)" in page  # shown as text; Jinja escapes what needs it
    assert 'id="by-day"' in page and "2026-11-02" in page
    assert "ClickFlare manual upload" in page
    # The totals by status are commissions, and their headers say so.
    assert '<th scope="col">Commission approved</th>' in page and '<th scope="col">Sale amounts</th>' in page
    filtered = client.get("/portal/conversions?status=approved").get_data(as_text=True)
    assert "cf-1" in filtered and "cf-2" not in filtered
    assert client.get("/portal/conversions?status=paid").status_code == 400
    assert client.get("/portal/conversions/export?format=json").status_code == 400  # a file, or nothing

    exported = client.get("/portal/conversions/export?format=clickflare&status=approved")
    assert exported.status_code == 200
    assert [line[0] for line in csv.reader(io.StringIO(exported.get_data(as_text=True)))] == ["cf-1"]


def test_the_portal_pages_need_a_login(client: FlaskClient) -> None:
    assert client.get("/portal/conversions").status_code == 302
    assert client.get("/portal/conversions/export?format=csv").status_code == 302


@pytest.mark.parametrize("path", ["/api/v1/conversions", "/api/v1/deliveries"])
def test_the_last_date_there_is_is_a_to_date_like_any_other(
    client: FlaskClient, publisher: Account, book: Book, path: str
) -> None:
    response = client.get(path, query_string={"to": "9999-12-31"}, headers=publisher.auth)
    assert response.status_code == 200  # it was a 500: the day after it overflows


@pytest.mark.parametrize(
    ("path", "args", "field"),
    [
        ("/api/v1/conversions", {"stauts": "approved"}, "stauts"),
        ("/api/v1/conversions", {"click_id": "true"}, "click_id"),  # checked even for the JSON page
        ("/api/v1/programs", {"fobs6": "x"}, "fobs6"),
    ],
)
def test_an_unknown_or_misspelt_parameter_is_a_400_not_the_whole_list(
    client: FlaskClient, publisher: Account, path: str, args: dict[str, str], field: str
) -> None:
    response = client.get(path, query_string=args, headers=publisher.auth)
    assert response.status_code == 400 and field in response.json["fields"]
