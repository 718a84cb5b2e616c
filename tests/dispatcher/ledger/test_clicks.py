"""GET /c/<program_id>: the tracking link records a click and redirects with the network click id."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select, update

from dispatcher.db import get_db
from dispatcher.ledger.clicks import with_click_id
from dispatcher.models import Advertiser, Click, Program
from dispatcher.web.access_log import AccessLog
from dispatcher.web.fast_path import FastPath
from tests.dispatcher import factories
from tests.dispatcher.ledger.conftest import Network, statements_run


def clicks(network: Network) -> list[Click]:
    with network.session() as session:
        return list(session.scalars(select(Click).order_by(Click.id)))


def test_a_click_is_recorded_with_its_sub_ids_and_redirects_with_the_click_id(network: Network) -> None:
    response = network.client.get(
        f"/c/{network.program_id}",
        query_string={
            "pub": network.publisher_id,
            "ts": network.source_id,
            "fobs": "pub-click-1",
            "fobs5": "e",
        },
        headers={"User-Agent": "Browser/1.0"},
    )

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "shop.example", "/landing")
    query = parse_qs(location.query)
    assert query["utm"] == ["aff"]
    [recorded] = clicks(network)
    assert query["clickid"] == [recorded.click_id]
    assert (recorded.fobs, recorded.fobs2, recorded.fobs5) == ("pub-click-1", None, "e")
    assert (recorded.publisher_id, recorded.traffic_source_id) == (network.publisher_id, network.source_id)
    assert recorded.user_agent == "Browser/1.0"
    assert recorded.ip == "127.0.0.1"
    assert response.headers["Cache-Control"] == "no-store"


def test_click_ids_are_unguessable_url_safe_and_at_most_32_characters(network: Network) -> None:
    ids = {network.click() for _ in range(20)}

    assert len(ids) == 20
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{20,32}", click_id) for click_id in ids)


@pytest.mark.parametrize(
    ("landing_url", "expected"),
    [
        ("https://shop.example/?ref={clickid}", "https://shop.example/?ref=abc-1"),
        ("https://shop.example/p/{clickid}/x", "https://shop.example/p/abc-1/x"),
        ("https://shop.example/", "https://shop.example/?clickid=abc-1"),
        ("https://shop.example/?a=b%20c", "https://shop.example/?a=b%20c&clickid=abc-1"),
        ("https://shop.example/?a=1#top", "https://shop.example/?a=1&clickid=abc-1#top"),
    ],
)
def test_the_click_id_is_substituted_or_added_to_the_landing_url(landing_url: str, expected: str) -> None:
    assert with_click_id(landing_url, "abc-1") == expected


@pytest.mark.parametrize(
    ("change", "program_path"),
    [({}, "/c/999999"), ({"active": False}, None), ({"advertiser_active": False}, None)],
)
def test_an_unknown_or_inactive_program_is_a_404_page_never_a_redirect(
    network: Network, change: dict[str, Any], program_path: str | None
) -> None:
    with network.session() as session:
        if "active" in change:
            session.execute(update(Program).values(active=False))
        if "advertiser_active" in change:
            session.execute(update(Advertiser).values(active=False))

    response = network.client.get(
        program_path or f"/c/{network.program_id}",
        query_string={"pub": network.publisher_id, "ts": network.source_id},
    )

    assert response.status_code == 404
    assert "Location" not in response.headers
    assert b"<h1>404" in response.data
    assert clicks(network) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"ts": "SOURCE"}, b"pub: is required"),
        ({"pub": "abc", "ts": "SOURCE"}, b"pub: must be a positive whole number"),
        ({"pub": "PUB"}, b"ts: is required"),
        ({"pub": "PUB", "ts": "OTHER"}, b"ts: is not a traffic source of publisher"),
        ({"pub": "PUB", "ts": "999999"}, b"ts: is not a traffic source of publisher"),
        ({"pub": "PUB", "ts": "SOURCE", "fobs": "x" * 256}, b"fobs: must be at most 255 characters"),
        ({"pub": "PUB", "ts": "SOURCE", "fobs3": "x" * 256}, b"fobs3: must be at most 255 characters"),
    ],
)
def test_a_bad_tracking_link_is_a_400_page_naming_the_parameter_and_records_nothing(
    network: Network, query: dict[str, str], message: bytes
) -> None:
    stranger = _other_publishers_source(network)
    values = {"PUB": str(network.publisher_id), "SOURCE": str(network.source_id), "OTHER": str(stranger)}
    resolved = {key: values.get(value, value) for key, value in query.items()}

    response = network.client.get(f"/c/{network.program_id}", query_string=resolved)

    assert response.status_code == 400
    assert message in response.data
    assert "Location" not in response.headers
    assert clicks(network) == []


def test_a_sub_id_of_exactly_255_characters_is_kept_whole(network: Network) -> None:
    network.click(fobs="y" * 255)

    assert clicks(network)[0].fobs == "y" * 255


def kinds(statements: list[str]) -> list[str]:
    """First words, less transaction control (psycopg sends BEGIN unseen; SQLite's is ours)."""
    words = [statement.split()[0].upper() for statement in statements]
    return [word for word in words if word not in ("BEGIN", "COMMIT", "ROLLBACK")]


def test_a_click_is_one_insert_and_nothing_else(network: Network) -> None:
    with statements_run(get_db(network.app)) as statements:
        network.click()

    assert kinds(statements) == ["INSERT"]
    with network.session() as session:
        assert session.scalar(select(func.count(Click.id))) == 1


def test_a_refused_click_costs_one_more_select_that_says_why(network: Network) -> None:
    with statements_run(get_db(network.app)) as statements:
        response = network.client.get(f"/c/{network.program_id}", query_string={"pub": 1, "ts": 999999})

    assert response.status_code == 400
    assert kinds(statements) == ["INSERT", "SELECT"]


def _other_publishers_source(network: Network) -> int:
    with network.session() as session:
        stranger = factories.publisher(session)
        return factories.traffic_source(session, stranger).id


@pytest.mark.parametrize(
    ("landing_url", "location"),
    [
        ("https://shop.example/landing?utm=aff", "https://shop.example/landing?utm=aff&clickid={id}"),
        ("https://Shop.Example/p/{clickid}/x?a=<b>&c", "https://shop.example/p/{id}/x?a=%3Cb%3E&c"),
        (
            "https://shop.example/caf\u00e9?q=\u00fc#top",
            "https://shop.example/caf%C3%A9?q=%C3%BC&clickid={id}#top",
        ),
        ("https://{clickid}.shop.example/", None),  # iri_to_uri lowercases the host: the id's case too
        ("https://shop.example/?CLICKID=1", "https://shop.example/?CLICKID=1&clickid={id}"),
    ],
)
def test_the_fast_path_answers_a_click_as_the_flask_view_does(
    network: Network, landing_url: str, location: str | None
) -> None:
    """Good clicks are answered in front of Flask (dispatcher.web.fast_path.FastPath); a path it leaves
    to Flask's router (a leading zero) reaches the view. Both record the click and answer alike."""
    assert isinstance(network.app.wsgi_app, AccessLog) and isinstance(network.app.wsgi_app.app, FastPath)
    with network.session() as session:
        session.execute(update(Program).values(landing_url=landing_url))
    query = {"pub": network.publisher_id, "ts": network.source_id, "fobs": "a b"}
    fast = network.client.get(f"/c/{network.program_id}", query_string=query)
    flask_view = network.client.get(f"/c/0{network.program_id}", query_string=query)

    recorded = clicks(network)
    assert [click.fobs for click in recorded] == ["a b", "a b"]
    assert fast.status == flask_view.status == "302 FOUND"
    answers = list(zip((fast, flask_view), recorded, strict=True))
    for response, click in answers:
        expected = (location or "https://{id}.shop.example/").format(id=click.click_id)
        assert response.headers["Location"] == (expected if location else expected.lower())
    # Vary: Cookie, from Flask's session handling; X-Request-ID: each request's own.
    ignored = {"Location", "Content-Length", "Vary", "X-Request-ID"}
    assert fast.headers["X-Request-ID"] != flask_view.headers["X-Request-ID"]
    assert {k: v for k, v in fast.headers.items() if k not in ignored} == {
        k: v for k, v in flask_view.headers.items() if k not in ignored
    }
    pages = [response.data.replace(click.click_id.encode(), b"{id}") for response, click in answers]
    assert pages[0] == pages[1]
    assert b'<a href="' in pages[0]
