"""Postbacks scoped to programs: the API and the form set `program_ids`; outbox and backfill follow it.

Every program of the network is open to every publisher; a stopped program (it or its advertiser inactive)
cannot be added to a scope, but stays where it already was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from dispatcher import accounts, backfill
from dispatcher.db import get_db
from dispatcher.models import Advertiser, Delivery, Postback, Program, postback_programs
from tests.dispatcher import factories
from tests.portal.conftest import Account, Receiver, add_source
from tests.workers.conftest import work_burst, worker_env

URL = "https://tracker.example/pb?cid=#fobs#&program=#programid#"


@dataclass(frozen=True)
class Shop:
    """One advertiser with two running programs."""

    api_key: str
    shoes: int
    bags: int


@pytest.fixture
def shop(app: Flask) -> Shop:
    with get_db(app).session() as session:
        advertiser = accounts.create_advertiser(session, "Shop")
        shoes, bags = (
            accounts.create_program(
                session,
                advertiser.advertiser.id,
                name,
                landing_url="https://shop.example/?ref={clickid}",
                commission="10%",
            ).id
            for name in ("Shoes", "Bags")
        )
        session.commit()
        return Shop(advertiser.api_key, shoes, bags)


def stop(app: Flask, program_id: int, *, advertiser: bool = False) -> None:
    """Stop a program, or its whole advertiser."""
    with get_db(app).session() as session:
        program = session.get(Program, program_id)
        assert program is not None
        if advertiser:
            found = session.get(Advertiser, program.advertiser_id)
            assert found is not None
            found.active = False
        else:
            program.active = False
        session.commit()


def api(client: FlaskClient, owner: Account, method: str, path: str, body: object = None) -> Any:
    return client.open(path, method=method, json=body, headers=owner.auth)


def scope_rows(app: Flask) -> int:
    with get_db(app).session() as session:
        return session.scalar(select(func.count()).select_from(postback_programs)) or 0


def test_the_api_sets_reads_and_changes_a_postbacks_programs(
    client: FlaskClient, publisher: Account, shop: Shop
) -> None:
    created = api(
        client,
        publisher,
        "POST",
        "/api/v1/postbacks",
        {"url": URL, "program_ids": [shop.bags, str(shop.shoes)]},
    )
    path = f"/api/v1/postbacks/{created.get_json()['id']}"
    read = api(client, publisher, "GET", path).get_json()
    other_field = api(client, publisher, "PUT", path, {"events": ["approved"]}).get_json()
    narrowed = api(client, publisher, "PUT", path, {"program_ids": [shop.bags]}).get_json()
    widened = api(client, publisher, "PUT", path, {"program_ids": []}).get_json()
    default = api(client, publisher, "POST", "/api/v1/postbacks", {"url": URL}).get_json()

    assert created.status_code == 201
    assert created.get_json()["program_ids"] == sorted([shop.shoes, shop.bags]) == read["program_ids"]
    assert other_field["program_ids"] == sorted([shop.shoes, shop.bags])  # PUT changes only what is sent
    assert (narrowed["program_ids"], narrowed["events"]) == ([shop.bags], ["approved"])
    assert widened["program_ids"] == [] and default["program_ids"] == []  # [] = every program


@pytest.mark.parametrize(
    ("program_ids", "problem"),
    [
        ([987654], "987654 is not a program of this network"),
        (["1" * 30], "1111111111111111111... is not a program of this network"),
        ("all", "must be a list of program ids ([] for all), got 'all'"),
        ([1.5], "must hold program ids (whole numbers), got 1.5"),
        ([True], "must hold program ids (whole numbers), got True"),
        ({"id": 1}, "must be a list of program ids ([] for all), got {'id': 1}"),
    ],
)
def test_a_program_id_that_is_not_a_program_is_refused_naming_it(
    app: Flask, client: FlaskClient, publisher: Account, shop: Shop, program_ids: object, problem: str
) -> None:
    response = api(client, publisher, "POST", "/api/v1/postbacks", {"url": URL, "program_ids": program_ids})

    assert response.status_code == 400
    assert response.get_json() == {"error": f"program_ids: {problem}", "fields": {"program_ids": problem}}
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Postback)) == 0


@pytest.mark.parametrize("whole_advertiser", [False, True], ids=["program", "advertiser"])
def test_a_stopped_program_cannot_be_added_but_stays_where_it_was(
    app: Flask, client: FlaskClient, publisher: Account, shop: Shop, whole_advertiser: bool
) -> None:
    kept = api(client, publisher, "POST", "/api/v1/postbacks", {"url": URL, "program_ids": [shop.shoes]})
    path = f"/api/v1/postbacks/{kept.get_json()['id']}"
    stop(app, shop.shoes, advertiser=whole_advertiser)

    new = api(client, publisher, "POST", "/api/v1/postbacks", {"url": URL, "program_ids": [shop.shoes]})
    renamed = api(client, publisher, "PUT", path, {"name": "Renamed"})
    resent = api(client, publisher, "PUT", path, {"program_ids": [shop.shoes]})
    removed = api(client, publisher, "PUT", path, {"program_ids": []})
    added_back = api(client, publisher, "PUT", path, {"program_ids": [shop.shoes]})

    assert new.status_code == 400
    assert new.get_json()["fields"] == {"program_ids": f"{shop.shoes} is not an active program"}
    assert renamed.status_code == 200 and renamed.get_json()["program_ids"] == [shop.shoes]
    assert resent.status_code == 200 and resent.get_json()["program_ids"] == [shop.shoes]
    assert removed.status_code == 200 and removed.get_json()["program_ids"] == []
    assert added_back.status_code == 400  # once removed, it is a new choice again


def test_the_preview_of_an_edit_keeps_a_stopped_program_as_saving_does_and_a_new_draft_refuses_it(
    app: Flask, client: FlaskClient, publisher: Account, other: Account, shop: Shop
) -> None:
    kept = api(client, publisher, "POST", "/api/v1/postbacks", {"url": URL, "program_ids": [shop.shoes]})
    plain = api(client, publisher, "POST", "/api/v1/postbacks", {"url": URL})
    kept_id, plain_id = kept.get_json()["id"], plain.get_json()["id"]
    stop(app, shop.shoes)
    draft = {"url": URL, "program_ids": [shop.shoes]}
    preview = "/api/v1/postbacks/preview"

    answers = {
        "edit keeping it": api(client, publisher, "POST", f"{preview}?postback={kept_id}", draft),
        "edit of another postback": api(client, publisher, "POST", f"{preview}?postback={plain_id}", draft),
        "new postback": api(client, publisher, "POST", preview, draft),
    }
    saves = {
        "edit keeping it": api(client, publisher, "PUT", f"/api/v1/postbacks/{kept_id}", draft),
        "edit of another postback": api(client, publisher, "PUT", f"/api/v1/postbacks/{plain_id}", draft),
        "new postback": api(client, publisher, "POST", "/api/v1/postbacks", draft),
    }
    foreign = api(client, other, "POST", f"{preview}?postback={kept_id}", draft)
    malformed = api(client, publisher, "POST", f"{preview}?postback=7x", draft)
    misspelt = api(client, publisher, "POST", f"{preview}?postbak={kept_id}", draft)

    for case, answer in answers.items():  # the preview refuses exactly what saving refuses
        assert answer.status_code == (200 if saves[case].status_code in (200, 201) else 400), case
    assert answers["edit keeping it"].get_json()["ok"] is True
    refused = {"program_ids": f"{shop.shoes} is not an active program"}
    assert answers["new postback"].get_json()["fields"] == refused
    assert answers["edit of another postback"].get_json()["fields"] == refused
    assert foreign.status_code == 404
    assert malformed.status_code == 400
    assert malformed.get_json()["fields"] == {"postback": "must be the id of one of your postbacks, got '7x'"}
    assert misspelt.status_code == 400
    assert misspelt.get_json()["fields"] == {
        "postbak": "is not a parameter of the preview; known: postback, status"
    }


def test_a_refused_change_leaves_the_scope_as_it_was(
    app: Flask, client: FlaskClient, publisher: Account, shop: Shop
) -> None:
    created = api(client, publisher, "POST", "/api/v1/postbacks", {"url": URL, "program_ids": [shop.shoes]})
    path = f"/api/v1/postbacks/{created.get_json()['id']}"

    refused = api(client, publisher, "PUT", path, {"program_ids": [shop.bags], "method": "PATCH"})

    assert refused.status_code == 400 and list(refused.get_json()["fields"]) == ["method"]
    assert api(client, publisher, "GET", path).get_json()["program_ids"] == [shop.shoes]
    assert scope_rows(app) == 1


def form(token: str, **fields: Any) -> dict[str, Any]:
    return {
        "csrf_token": token,
        "url": URL,
        "method": "GET",
        "scope": "all",
        "events": ["sale", "lead"],
        "statuses": ["pending", "approved"],
        **fields,
    }


def checked_programs(page: str) -> set[int]:
    return {int(value) for value in re.findall(r'name="program_ids" value="(\d+)" checked', page)}


def test_the_form_scopes_a_postback_to_programs_and_shows_them_when_editing(
    app: Flask, portal: FlaskClient, publisher: Account, token: str, shop: Shop
) -> None:
    new_page = portal.get("/portal/postbacks/new").get_data(as_text=True)
    created = portal.post(
        "/portal/postbacks", data=form(token, program_scope="selected", program_ids=[str(shop.bags)])
    )
    edit_page = portal.get(created.location).get_data(as_text=True)
    widened = portal.post(
        created.location, data=form(token, program_scope="all", program_ids=[str(shop.bags)])
    )
    after_widening = portal.get(created.location).get_data(as_text=True)

    assert f'name="program_ids" value="{shop.shoes}"' in new_page and "Bags" in new_page
    assert created.status_code == 302
    postback_id = int(created.location.rsplit("/", 1)[1])
    assert checked_programs(edit_page) == {shop.bags}
    assert 'name="program_scope" value="selected" checked' in edit_page
    assert widened.status_code == 302 and checked_programs(after_widening) == set()
    with get_db(app).session() as session:
        saved = session.get(Postback, postback_id)
        assert saved is not None and saved.programs == []
    listed = portal.get("/portal/postbacks").get_data(as_text=True)
    assert "All programs" in listed


def test_the_form_names_a_scope_without_programs_and_a_stopped_one(
    app: Flask, portal: FlaskClient, token: str, shop: Shop
) -> None:
    stop(app, shop.shoes)

    empty = portal.post("/portal/postbacks", data=form(token, program_scope="selected"))
    stopped = portal.post(
        "/portal/postbacks", data=form(token, program_scope="selected", program_ids=[str(shop.shoes)])
    )

    assert empty.status_code == 400
    assert "choose at least one program, or all programs" in empty.get_data(as_text=True)
    assert stopped.status_code == 400
    page = stopped.get_data(as_text=True)
    assert f"{shop.shoes} is not an active program" in page
    assert f'name="program_ids" value="{shop.shoes}"' not in page  # a stopped program is not offered
    assert scope_rows(app) == 0


def test_the_edit_page_keeps_offering_a_stopped_program_of_the_scope(
    app: Flask, portal: FlaskClient, publisher: Account, token: str, shop: Shop
) -> None:
    created = api(portal, publisher, "POST", "/api/v1/postbacks", {"url": URL, "program_ids": [shop.shoes]})
    page_url = f"/portal/postbacks/{created.get_json()['id']}"
    stop(app, shop.shoes)

    page = portal.get(page_url).get_data(as_text=True)
    saved = portal.post(
        page_url, data=form(token, name="Kept", program_scope="selected", program_ids=[str(shop.shoes)])
    )

    assert checked_programs(page) == {shop.shoes} and "no longer running" in page
    assert saved.status_code == 302 and scope_rows(app) == 1


def _click(client: FlaskClient, program_id: int, publisher: Account, source: int, fobs: str) -> str:
    landing = client.get(f"/c/{program_id}?pub={publisher.id}&ts={source}&fobs={fobs}")
    assert landing.status_code == 302, landing.get_data(as_text=True)
    return parse_qs(urlsplit(landing.headers["Location"]).query)["ref"][0]


def test_a_sale_fires_only_the_postbacks_scoped_to_its_program(
    app: Flask,
    client: FlaskClient,
    publisher: Account,
    shop: Shop,
    receiver: Receiver,
    clean_redis: redis.Redis,
    database_url: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    source = add_source(app, publisher, "Blog")
    for path, scope in (("/shoes", [shop.shoes]), ("/bags", [shop.bags]), ("/any", [])):
        body = {"url": f"{receiver.url}{path}?cid=#fobs#&program=#programid#", "program_ids": scope}
        assert api(client, publisher, "POST", "/api/v1/postbacks", body).status_code == 201
    sales = []
    for program_id, fobs in ((shop.shoes, "s1"), (shop.bags, "b1")):
        click_id = _click(client, program_id, publisher, source, fobs)
        sale = client.post(
            "/api/v1/transactions",
            json={"click_id": click_id, "order_number": f"O-{fobs}", "sale_amount": "50.00"},
            headers={"Authorization": f"Bearer {shop.api_key}"},
        )
        sales.append((sale.status_code, sale.get_json()["deliveries"]))

    work_burst(worker_env(database_url, redis_url, tmp_path))

    assert sales == [(201, 2), (201, 2)]  # its program's postback and the unscoped one
    assert sorted(call.path for call in receiver.received) == sorted(
        [
            f"/shoes?cid=s1&program={shop.shoes}",
            f"/any?cid=s1&program={shop.shoes}",
            f"/bags?cid=b1&program={shop.bags}",
            f"/any?cid=b1&program={shop.bags}",
        ]
    )


def test_a_backfill_sends_only_past_sales_of_the_postbacks_programs(
    app: Flask, client: FlaskClient, publisher: Account, shop: Shop, clean_redis: redis.Redis
) -> None:
    moment = datetime.now(UTC) - timedelta(days=2)
    with get_db(app).session() as session:
        owner = session.get(factories.Publisher, publisher.id)
        assert owner is not None
        events = {
            program_id: factories.event(
                session,
                factories.transaction(session, owner, session.get(Program, program_id), event_time=moment),
            ).id
            for program_id in (shop.shoes, shop.bags)
        }
        session.commit()
    created = api(client, publisher, "POST", "/api/v1/postbacks", {"url": URL, "program_ids": [shop.bags]})
    postback_id = created.get_json()["id"]

    result = backfill.run(
        get_db(app).session_factory, clean_redis, publisher.id, postback_id, moment - timedelta(days=1)
    )

    with get_db(app).session() as session:
        sent = session.scalars(
            select(Delivery.transaction_event_id).where(Delivery.postback_id == postback_id)
        )
        assert list(sent) == [events[shop.bags]]
    assert (result.events, result.created) == (2, 1)
