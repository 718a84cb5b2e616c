"""Tracking links: the programs a publisher may promote, the link builder (page and API), and the links it
builds answering 302 through `/c/` with the click recorded as built."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, event, select

from dispatcher.db import get_db
from dispatcher.models import Click
from tests.dispatcher import factories
from tests.portal.conftest import Account, add_source, deactivate_source, log_in


@pytest.fixture
def shops(app: Flask) -> dict[str, int]:
    with get_db(app).session() as session:
        running = factories.program(
            session,
            name="Acme Shoes",
            landing_url="https://shop.example/land?src=aff",
            commission_value=Decimal(12),
        )
        placeholder = factories.program(
            session,
            name="Book Club",
            landing_url="https://books.example/{clickid}/start",
            commission_type="flat",
            commission_value=Decimal("5"),
            currency="EUR",
        )
        stopped = factories.program(session, name="Closed Shop", active=False)
        session.commit()
        return {"running": running.id, "placeholder": placeholder.id, "stopped": stopped.id}


def follow(client: FlaskClient, link: str) -> tuple[str, Click]:
    """Click the link as a visitor would: where it redirects, and the click it recorded."""
    parts = urlsplit(link)
    response = client.get(parts.path, query_string=parts.query)
    assert response.status_code == 302, response.get_data(as_text=True)
    click_id = parse_qs(urlsplit(response.headers["Location"]).query).get("clickid", [""])[0]
    with get_db(client.application).session() as session:
        if not click_id:  # a {clickid} landing URL: the id is in the path
            click_id = urlsplit(response.headers["Location"]).path.split("/")[1]
        click = session.scalars(select(Click).where(Click.click_id == click_id)).one()
        session.expunge(click)
    return response.headers["Location"], click


def test_the_page_lists_running_programs_with_a_link_each(
    app: Flask, client: FlaskClient, publisher: Account, shops: dict[str, int]
) -> None:
    source = add_source(app, publisher, "Blog")
    log_in(client, publisher)
    page = client.get("/portal/links").get_data(as_text=True)

    assert "Acme Shoes" in page and "Book Club" in page and "Closed Shop" not in page
    assert f"/c/{shops['running']}?pub={publisher.id}&amp;ts={source}" in page
    assert "12%" in page and "5.00 EUR" in page


def test_the_builder_makes_a_link_that_records_its_source_and_sub_ids(
    app: Flask, client: FlaskClient, publisher: Account, shops: dict[str, int]
) -> None:
    source = add_source(app, publisher, "Newsletter")
    log_in(client, publisher)
    page = client.get(
        "/portal/links",
        query_string={
            "program_id": shops["running"],
            "traffic_source_id": source,
            "fobs": "{cf_click_id}",
            "fobs3": "x y",
        },
    ).get_data(as_text=True)

    assert (
        'id="built-link"' in page and "https://shop.example/land?src=aff&amp;clickid=NETWORK_CLICK_ID" in page
    )
    link = page.split('id="tracking-link">', 1)[1].split("<", 1)[0].replace("&amp;", "&")
    assert parse_qs(urlsplit(link).query) == {
        "pub": [str(publisher.id)],
        "ts": [str(source)],
        "fobs": ["{cf_click_id}"],
        "fobs3": ["x y"],
    }
    landing, click = follow(client, link)
    assert landing.startswith("https://shop.example/land?src=aff&clickid=")
    assert (click.publisher_id, click.traffic_source_id, click.fobs, click.fobs3) == (
        publisher.id,
        source,
        "{cf_click_id}",
        "x y",
    )


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"program_id": "stopped"}, "program_id"),
        ({"program_id": "abc"}, "program_id"),
        ({"traffic_source_id": "foreign"}, "traffic_source_id"),
        ({"fobs2": "x" * 300}, "fobs2"),
        ({"fobs": "a\x01b"}, "fobs"),
    ],
)
def test_the_builder_refuses_what_a_click_would_refuse(
    app: Flask,
    client: FlaskClient,
    publisher: Account,
    other: Account,
    shops: dict[str, int],
    args: dict[str, str],
    field: str,
) -> None:
    values = {
        "stopped": str(shops["stopped"]),
        "foreign": str(add_source(app, other, "Theirs")),
    }
    query = {key: values.get(value, value) for key, value in args.items()}
    log_in(client, publisher)
    page = client.get("/portal/links", query_string=query)
    assert page.status_code == 400
    assert field in page.get_data(as_text=True)
    api = client.get("/api/v1/programs", query_string=query, headers=publisher.auth)
    assert api.status_code == 400 and field in api.json["fields"]


def test_the_api_lists_programs_with_links_that_answer_302(
    app: Flask, client: FlaskClient, publisher: Account, shops: dict[str, int]
) -> None:
    source = add_source(app, publisher, "Push")
    body = client.get(
        "/api/v1/programs", query_string={"traffic_source_id": source, "fobs": "abc"}, headers=publisher.auth
    ).json

    by_name = {program["name"]: program for program in body["programs"]}
    assert set(by_name) == {"Acme Shoes", "Book Club"}
    book = by_name["Book Club"]
    assert (book["commission"], book["currency"], book["lands_on"]) == (
        "5.00 EUR",
        "EUR",
        "https://books.example/NETWORK_CLICK_ID/start",
    )
    landing, click = follow(client, book["tracking_link"])
    assert landing.startswith("https://books.example/") and landing.endswith("/start")
    assert (click.program_id, click.traffic_source_id, click.fobs) == (shops["placeholder"], source, "abc")
    one = client.get(
        "/api/v1/programs", query_string={"program_id": shops["running"]}, headers=publisher.auth
    )
    assert [program["name"] for program in one.json["programs"]] == ["Acme Shoes"]
    assert client.get("/api/v1/programs").status_code == 401


def test_every_link_carries_a_traffic_source_and_none_is_offered_without_one(
    app: Flask, client: FlaskClient, publisher: Account, shops: dict[str, int]
) -> None:
    # A click without `ts` is refused (400): a link without one would send every visitor to an error page.
    log_in(client, publisher)
    page = client.get("/portal/links", query_string={"program_id": shops["running"]}).get_data(as_text=True)
    assert 'id="no-source"' in page and 'id="built-link"' not in page and "/c/" not in page
    api = client.get("/api/v1/programs", headers=publisher.auth).json
    assert [program["tracking_link"] for program in api["programs"]] == [None, None]

    first = add_source(app, publisher, "Zeta")
    add_source(app, publisher, "Alpha")
    page = client.get("/portal/links", query_string={"program_id": shops["running"]}).get_data(as_text=True)
    assert 'id="no-source"' not in page
    built = page.split('id="tracking-link">', 1)[1].split("<", 1)[0].replace("&amp;", "&")
    assert parse_qs(urlsplit(built).query)["ts"] == [str(first)]  # the oldest: a new one changes no link
    listed = page.split('id="programs"', 1)[1]
    assert listed.count(f"ts={first}") == 2
    landing, click = follow(client, built)
    assert click.traffic_source_id == first
    api = client.get("/api/v1/programs", headers=publisher.auth).json
    for program in api["programs"]:
        assert follow(client, program["tracking_link"])[1].traffic_source_id == first


def no_source_message(page: str) -> str | None:
    found = re.search(r'id="no-source">(.*?)</div>', page, re.S)
    return found.group(1) if found else None


@pytest.mark.parametrize(
    ("names", "deactivated", "message"),
    [
        ((), (), "add a traffic source</a> first"),
        (("Blog", "Push"), ("Blog", "Push"), "the network has deactivated all of yours"),
        (("Blog", "Push"), ("Blog",), None),
    ],
    ids=["none", "all-deactivated", "one-active"],
)
def test_the_page_says_why_no_link_can_be_built(
    app: Flask,
    client: FlaskClient,
    publisher: Account,
    shops: dict[str, int],
    names: tuple[str, ...],
    deactivated: tuple[str, ...],
    message: str | None,
) -> None:
    # A publisher whose sources the network all deactivated has sources: "add one first" would be untrue.
    ids = {name: add_source(app, publisher, name) for name in names}
    for name in deactivated:
        deactivate_source(app, publisher, ids[name])
    log_in(client, publisher)
    page = client.get("/portal/links", query_string={"program_id": shops["running"]}).get_data(as_text=True)

    said = no_source_message(page)
    if message is None:
        assert said is None and 'id="built-link"' in page
        return
    assert said is not None and message in said and 'href="/portal/sources"' in said
    assert ("ask the network to reactivate one" in said) == bool(deactivated)
    assert ("deactivated" in said) == bool(deactivated)
    assert 'id="built-link"' not in page and "/c/" not in page
    api = client.get("/api/v1/programs", headers=publisher.auth).json
    assert api is not None and [program["tracking_link"] for program in api["programs"]] == [None, None]


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's engine runs meanwhile."""
    seen: list[str] = []

    def note(_conn: Connection, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    engine = get_db(app).engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({}, 200),
        ({"program_id": "running"}, 200),
        ({"program_id": "running", "traffic_source_id": "mine", "fobs": "abc"}, 200),
        ({"program_id": "running", "traffic_source_id": "foreign"}, 400),
        ({"program_id": "running", "fobs2": "x" * 300}, 400),
    ],
    ids=["plain", "program", "source", "foreign-source", "bad-sub-id"],
)
def test_the_page_reads_the_traffic_sources_once(
    app: Flask,
    client: FlaskClient,
    publisher: Account,
    other: Account,
    shops: dict[str, int],
    query: dict[str, str],
    status: int,
) -> None:
    add_source(app, publisher, "Blog")
    values = {
        "running": str(shops["running"]),
        "mine": str(add_source(app, publisher, "Push")),
        "foreign": str(add_source(app, other, "Theirs")),
    }
    log_in(client, publisher)
    with statements(app) as seen:
        response = client.get("/portal/links", query_string={k: values.get(v, v) for k, v in query.items()})

    assert response.status_code == status
    reads = [sql for sql in seen if sql.lstrip().upper().startswith("SELECT") and "traffic_sources" in sql]
    assert len(reads) == 1, reads
