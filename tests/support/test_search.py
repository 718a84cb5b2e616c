"""Support search: every filter alone and combined, bad values named, keyset pages at their boundaries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dispatcher.db import get_db
from dispatcher.support import search
from dispatcher.validation import FieldError
from tests.dispatcher import factories
from tests.support.conftest import T0, Network

Args = Callable[[Network], dict[str, str]]


def _found(app: Flask, network: Network, args: dict[str, str], limit: int = 50) -> list[str]:
    names = {delivery_id: name for name, delivery_id in network.ids.items()}
    with get_db(app).session() as session:
        page = search.search(session, search.parse_filters(args), limit)
        return [names[row.delivery.id] for row in page.rows]


# Newest first: e (T0 + 25 h), d, c, b, a (T0).
FILTERS: list[tuple[str, Args, list[str]]] = [
    ("no filter", lambda n: {}, ["e", "d", "c", "b", "a"]),
    ("sales id", lambda n: {"sales_id": "SALE-C"}, ["c"]),
    ("order number", lambda n: {"order_number": "ORD-B"}, ["b"]),
    ("click id", lambda n: {"click_id": "CLICK-D"}, ["d"]),
    ("sub id", lambda n: {"sub_id": "sub-a"}, ["e", "a"]),
    ("publisher", lambda n: {"publisher_id": str(n.publishers["p2"])}, ["e", "d"]),
    ("program", lambda n: {"program_id": str(n.programs["hats"])}, ["d", "c"]),
    ("advertiser", lambda n: {"advertiser_id": str(n.advertisers["shoes"])}, ["e", "b", "a"]),
    ("postback", lambda n: {"postback_id": str(n.postbacks["hook1"])}, ["b", "a"]),
    ("destination host, on every port", lambda n: {"destination_host": "C.Example"}, ["e", "d"]),
    ("destination host and port", lambda n: {"destination_host": "c.example:8443"}, ["e"]),
    ("state", lambda n: {"state": "failed"}, ["e", "c", "a"]),
    ("error class", lambda n: {"error_class": "timeout"}, ["c"]),
    ("status code", lambda n: {"status_code": "404"}, ["a"]),
    ("from a date", lambda n: {"from": "2026-11-11"}, ["e"]),
    ("to a date, inclusive", lambda n: {"to": "2026-11-10"}, ["d", "c", "b", "a"]),
    ("a time range", lambda n: {"from": "2026-11-10T12:05", "to": "2026-11-10T12:25Z"}, ["c", "b"]),
    ("unknown value", lambda n: {"order_number": "nope"}, []),
]
COMBINED: list[tuple[str, Args, list[str]]] = [
    (
        "failed for a publisher",
        lambda n: {"publisher_id": str(n.publishers["p1"]), "state": "failed"},
        ["c", "a"],
    ),
    ("sub id and state", lambda n: {"sub_id": "sub-a", "state": "failed", "status_code": "500"}, ["e"]),
    (
        "program and host",
        lambda n: {"program_id": str(n.programs["shoes"]), "destination_host": "a.example"},
        ["b", "a"],
    ),
    (
        "advertiser and dates",
        lambda n: {"advertiser_id": str(n.advertisers["hats"]), "to": "2026-11-10T12:21"},
        ["c"],
    ),
    ("contradiction", lambda n: {"order_number": "ORD-A", "state": "succeeded"}, []),
]


@pytest.mark.parametrize(("label", "args", "expected"), FILTERS, ids=[row[0] for row in FILTERS])
def test_each_filter_finds_exactly_its_deliveries_newest_first(
    app: Flask, network: Network, label: str, args: Args, expected: list[str]
) -> None:
    assert _found(app, network, args(network)) == expected


@pytest.mark.parametrize(("label", "args", "expected"), COMBINED, ids=[row[0] for row in COMBINED])
def test_filters_combine_as_and(
    app: Flask, network: Network, label: str, args: Args, expected: list[str]
) -> None:
    assert _found(app, network, args(network)) == expected


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"state": "lost"}, "state"),
        ({"error_class": "gremlins"}, "error_class"),
        ({"status_code": "99"}, "status_code"),
        ({"status_code": "abc"}, "status_code"),
        ({"publisher_id": "-1"}, "publisher_id"),
        ({"from": "yesterday"}, "from"),
        ({"order_number": "a\x00b"}, "order_number"),
        ({"sales_id": "x" * 300}, "sales_id"),
        ({"before": "0"}, "before"),
        ({"publisher_id": "99999999999999999999"}, "publisher_id"),
    ],
)
def test_a_bad_filter_value_is_refused_naming_its_parameter(args: dict[str, str], field: str) -> None:
    with pytest.raises(FieldError) as refused:
        search.parse_filters(args)

    assert refused.value.field == field


def test_the_page_shows_a_bad_filter_as_a_400_naming_it(console: FlaskClient) -> None:
    response = console.get("/support/deliveries?status_code=abc")

    assert response.status_code == 400
    assert "status_code: must be an HTTP status code" in response.get_data(as_text=True)


def test_the_search_page_lists_matches_with_their_context(console: FlaskClient, network: Network) -> None:
    page = console.get("/support/deliveries?order_number=ORD-A").get_data(as_text=True)

    for shown in ("ORD-A", "SALE-A", "Voluum", "Shoes", "sub-a", "a.example", "HTTP 404"):
        assert shown in page
    assert "ORD-B" not in page


def _many(app: Flask, count: int, same_time: bool = False) -> list[int]:
    """`count` deliveries, one per minute (or all at one instant); their ids, newest first."""
    with get_db(app).session() as session:
        owner = factories.publisher(session)
        hook = factories.postback(session, owner)
        shop = factories.program(session)
        ids = []
        for i in range(count):
            sale = factories.transaction(session, owner, shop)
            at = T0 if same_time else T0 + timedelta(minutes=i)
            ids.append(factories.delivery(session, hook, factories.event(session, sale), created_at=at).id)
    return sorted(ids, reverse=True)


def _walk(app: Flask, limit: int) -> list[list[int]]:
    pages, cursor = [], None
    with get_db(app).session() as session:
        while True:
            args: dict[str, str] = {"before": str(cursor)} if cursor else {}
            page = search.search(session, search.parse_filters(args), limit)
            pages.append([row.delivery.id for row in page.rows])
            cursor = page.next_before
            if cursor is None:
                return pages


@pytest.mark.parametrize(
    ("rows", "limit", "sizes"),
    [(0, 3, [0]), (2, 3, [2]), (3, 3, [3]), (4, 3, [3, 1]), (6, 3, [3, 3]), (7, 3, [3, 3, 1])],
)
def test_pages_end_exactly_at_the_last_row(app: Flask, rows: int, limit: int, sizes: list[int]) -> None:
    ids = _many(app, rows)

    pages = _walk(app, limit)

    assert [len(page) for page in pages] == sizes
    assert [delivery for page in pages for delivery in page] == ids


def test_rows_created_at_the_same_instant_are_neither_skipped_nor_repeated(app: Flask) -> None:
    ids = _many(app, 7, same_time=True)

    pages = _walk(app, 2)

    assert [delivery for page in pages for delivery in page] == ids


def test_the_next_page_link_keeps_the_filters(console: FlaskClient, app: Flask, network: Network) -> None:
    _many(app, 60)

    first = console.get("/support/deliveries?state=pending").get_data(as_text=True)

    assert 'id="next-page"' in first and "state=pending" in first.split('id="next-page"')[1].split(">")[0]


def test_a_cursor_whose_row_was_deleted_still_pages_downwards(app: Flask) -> None:
    filters = search.Filters(before_id=10_000)
    ids = _many(app, 3)
    with get_db(app).session() as session:
        page = search.search(session, filters, 10)

    assert [row.delivery.id for row in page.rows] == ids


def test_times_in_the_filters_are_utc() -> None:
    parsed = search.parse_filters({"from": "2026-11-10T13:00+01:00", "to": "2026-11-10"})

    assert parsed.created_from == datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
    assert parsed.created_to == datetime(2026, 11, 11, tzinfo=UTC)
    assert parsed.as_args() == {"from": "2026-11-10T12:00:00Z", "to": "2026-11-11T00:00:00Z"}


@pytest.mark.parametrize(
    ("args", "status"),
    [({"to": "9999-12-31"}, 200), ({"from": "9999-12-31"}, 200), ({"to": "9999-12-31T23:00-05:00"}, 400)],
)
def test_the_edge_of_the_calendar_is_an_answer_not_a_500(
    console: FlaskClient, network: Network, args: dict[str, str], status: int
) -> None:
    assert console.get("/support/deliveries", query_string=args).status_code == status


def test_a_bare_host_finds_it_on_every_port_and_nothing_that_only_looks_alike(app: Flask) -> None:
    hosts = [
        "hooks.example",
        "hooks.example:8443",
        "hooks.example:80",
        "hooks.example.evil",
        "hooks.examples:8443",
    ]
    hosts += ["xhooks.example", "hooks.exampl", "hooks.example;1", "hooks.example9"]
    hosts += ["xn--bcher-kva.example:8080", "[2001:db8::1]", "[2001:db8::1]:8443", "[2001:db8::1:8443]"]
    with get_db(app).session() as session:
        owner, shop = factories.publisher(session), factories.program(session)
        hook = factories.postback(session, owner)
        made = {}
        for host in hosts:
            sale = factories.transaction(session, owner, shop)
            made[host] = factories.delivery(
                session, hook, factories.event(session, sale), destination_host=host
            ).id

    def found(host: str) -> set[str]:
        with get_db(app).session() as session:
            rows = search.search(session, search.parse_filters({"destination_host": host})).rows
        return {next(name for name, i in made.items() if i == row.delivery.id) for row in rows}

    assert found("hooks.example") == {"hooks.example", "hooks.example:8443", "hooks.example:80"}
    assert found("HOOKS.example:8443") == {"hooks.example:8443"}
    assert found("hooks.examples") == {"hooks.examples:8443"}
    assert found("hooks.exampl") == {"hooks.exampl"}
    # Typed as people write them, found in the form the engine keeps (IDNA, no trailing dot, IPv6 bracketed).
    assert found(" Bücher.example. ") == {"xn--bcher-kva.example:8080"}
    assert found("hooks.example.:8443") == {"hooks.example:8443"}
    assert found("2001:DB8:0::1") == {"[2001:db8::1]", "[2001:db8::1]:8443"}
    assert found("[2001:db8::1]:8443") == {"[2001:db8::1]:8443"}
    assert found("[2001:db8::1:8443]") == {"[2001:db8::1:8443]"}
    assert found("not a host!") == set()
    # A pasted URL, or a host with its path, is searched by its host and port (the scheme's default left out).
    assert found("https://hooks.example:8443/pb?sid=1") == {"hooks.example:8443"}
    # A URL without a port (or with its scheme's default) is the default port only: the bare host.
    assert found("http://user:pw@HOOKS.example:80/pb") == {"hooks.example"}
    assert found("https://hooks.example/pb") == {"hooks.example"}
    assert found("//hooks.example/pb") == {"hooks.example"}
    assert found("https://[2001:db8::1]/x") == {"[2001:db8::1]"}
    assert found("hooks.examples/pb") == {"hooks.examples:8443"}
    assert found("https://[2001:db8::1]:8443/x") == {"[2001:db8::1]:8443"}
