"""Postback pages: create and edit through the form (JavaScript off), preview, pause, delete, signing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from dispatcher.db import get_db
from dispatcher.models import Delivery, Postback
from tests.dispatcher import factories
from tests.portal.conftest import Account, add_source, csrf_token, deactivate_source, log_in

FLEXOFFERS = "http://yourdomain.com/pixel.track?sid=#fobs#&orderid=#on#&amount=#sa#&commission=#ca#&date=#et#"


def form(token: str, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "csrf_token": token,
        "url": FLEXOFFERS,
        "method": "GET",
        "scope": "all",
        "events": ["sale", "lead"],
        "statuses": ["pending", "approved"],
    }
    values.update(fields)
    return values


def stored(app: Flask, postback_id: int) -> Postback:
    with get_db(app).session() as session:
        postback = session.get(Postback, postback_id)
        assert postback is not None
        postback.traffic_sources  # noqa: B018 - load before the session closes
        return postback


def create(app: Flask, owner: Account, **fields: Any) -> int:
    with get_db(app).session() as session:
        return factories.postback(session, session.get(factories.Publisher, owner.id), **fields).id


def test_a_pasted_url_becomes_a_postback_scoped_to_chosen_sources(
    app: Flask, portal: FlaskClient, publisher: Account, token: str
) -> None:
    blog = add_source(app, publisher, "Blog")
    add_source(app, publisher, "Newsletter")

    response = portal.post(
        "/portal/postbacks",
        data=form(
            token,
            name="Voluum",
            scope="selected",
            traffic_source_ids=[str(blog)],
            **{"status_map.approved": "sale", "status_map.declined": "rejected"},
            header_name=["X-Api-Key", ""],
            header_value=["k-#publisherid#", ""],
            success_body_contains="OK",
        ),
    )

    assert response.status_code == 302
    postback_id = int(response.location.rsplit("/", 1)[1])
    saved = stored(app, postback_id)
    assert (saved.name, saved.url_template, saved.method) == ("Voluum", FLEXOFFERS, "GET")
    assert [source.id for source in saved.traffic_sources] == [blog]
    assert saved.status_map == {"approved": "sale", "declined": "rejected"}
    assert saved.headers == {"X-Api-Key": "k-#publisherid#"}
    assert (saved.success_body_contains, saved.publisher_id) == ("OK", publisher.id)
    page = portal.get(response.location).get_data(as_text=True)
    assert "Postback saved." in page
    assert "http://yourdomain.com/pixel.track?sid=cl1ck-4f2a&amp;orderid=ORD-10045" in page  # the preview


def source_labels(page: str) -> dict[int, str]:
    """The form's traffic source choices: id -> its label."""
    choices = page.split('id="traffic_source_ids">', 1)[1].split("</div>", 1)[0]
    return {int(found[0]): found[1] for found in re.findall(r'value="(\d+)"[^>]*> (.*?)</label>', choices)}


@pytest.mark.parametrize(
    ("names", "deactivated"),
    [((), ()), (("Blog", "Push"), ("Blog", "Push")), (("Blog", "Push"), ("Blog",))],
    ids=["none", "all-deactivated", "one-deactivated"],
)
def test_the_form_offers_every_source_and_marks_the_deactivated(
    app: Flask,
    portal: FlaskClient,
    publisher: Account,
    names: tuple[str, ...],
    deactivated: tuple[str, ...],
) -> None:
    # A deactivated source's earlier clicks still bring sales, so a postback may follow it: it is offered,
    # marked, and only a publisher with no source at all is told to add one.
    ids = {name: add_source(app, publisher, name) for name in names}
    for name in deactivated:
        deactivate_source(app, publisher, ids[name])
    page = portal.get("/portal/postbacks/new").get_data(as_text=True)

    labels = source_labels(page)
    assert set(labels) == set(ids.values())
    for name, source_id in ids.items():
        assert labels[source_id].startswith(name)
        assert ("deactivated by the network" in labels[source_id]) == (name in deactivated)
    told = 'You have no traffic sources yet (<a href="/portal/sources">add one</a>).'
    assert (told in page) == (not names)


def test_the_form_shows_every_problem_inline_and_keeps_what_was_typed(
    portal: FlaskClient, token: str
) -> None:
    response = portal.post(
        "/portal/postbacks",
        data=form(
            token,
            url="https://t.example/pb?cid={clickid}",
            events=[],
            scope="selected",
            header_name=["Host"],
            header_value=["evil.example"],
        ),
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Not saved." in page and "Fix 4 problems below" in page
    assert (
        "{clickid} is your tracker&#39;s placeholder, left from its postback URL and would arrive literally;"
        " here it is #fobs#" in page
    )
    assert "choose at least one of sale, lead, approved, declined, reversed, adjusted" in page
    assert "choose at least one traffic source, or all traffic sources" in page
    assert "Host is set from the URL and cannot be set" in page
    assert 'aria-invalid="true"' in page
    assert "https://t.example/pb?cid={clickid}</textarea>" in page


def test_form_and_api_give_the_same_message_for_the_same_mistake(
    portal: FlaskClient, publisher: Account, token: str
) -> None:
    bad_url = "https://t.example/pb?cid=REPLACE"
    page = portal.post("/portal/postbacks", data=form(token, url=bad_url)).get_data(as_text=True)
    api = portal.post("/api/v1/postbacks", json={"url": bad_url}, headers=publisher.auth).get_json()

    message = api["fields"]["url"]
    assert api["error"] == f"url: {message}"
    assert message.replace("'", "&#39;") in page


def test_a_private_literal_address_is_refused_unless_allowed(portal: FlaskClient, token: str) -> None:
    page = portal.post("/portal/postbacks", data=form(token, url="https://10.0.0.5/pb?c=#fobs#"))

    assert page.status_code == 400
    assert "10.0.0.5 is a private address; postbacks only go to public addresses" in page.get_data(
        as_text=True
    )
    allowed = portal.post("/portal/postbacks", data=form(token, url="http://127.0.0.1:9/pb?c=#fobs#"))
    assert allowed.status_code == 302  # the test app allows 127.0.0.0/8


def test_editing_changes_the_postback(
    app: Flask, portal: FlaskClient, publisher: Account, token: str
) -> None:
    postback_id = create(app, publisher)

    response = portal.post(
        f"/portal/postbacks/{postback_id}",
        data=form(token, method="POST", url="https://t.example/pb", body_template='{"cid": "#fobs#"}'),
    )

    assert response.status_code == 302
    saved = stored(app, postback_id)
    assert (saved.method, saved.content_type, saved.body_template) == (
        "POST",
        "application/json",
        '{"cid": "#fobs#"}',
    )


def test_pause_resume_and_delete_keep_deliveries(
    app: Flask, portal: FlaskClient, publisher: Account, token: str
) -> None:
    with get_db(app).session() as session:
        owner = session.get(factories.Publisher, publisher.id)
        hook = factories.postback(session, owner)
        sale = factories.transaction(session, owner, factories.program(session))
        factories.delivery(session, hook, factories.event(session, sale))
        postback_id = hook.id

    portal.post(f"/portal/postbacks/{postback_id}/pause", data={"csrf_token": token})
    paused = stored(app, postback_id)
    listing = portal.get("/portal/postbacks").get_data(as_text=True)
    portal.post(f"/portal/postbacks/{postback_id}/resume", data={"csrf_token": token})
    resumed = stored(app, postback_id)
    deleted = portal.post(f"/portal/postbacks/{postback_id}/delete", data={"csrf_token": token})

    assert (paused.active, paused.paused_reason) == (False, "Paused by the publisher")
    assert "badge-paused" in listing and "Paused by the publisher" in listing
    assert (resumed.active, resumed.paused_reason) == (True, None)
    assert deleted.location == "/portal/postbacks"
    assert stored(app, postback_id).deleted_at is not None
    assert portal.get(f"/portal/postbacks/{postback_id}").status_code == 404
    with get_db(app).session() as session:
        assert session.scalars(select(Delivery.postback_id)).all() == [postback_id]
    assert "No postbacks yet" in portal.get("/portal/postbacks").get_data(as_text=True)


def test_the_list_shows_health_last_result_and_failing(
    app: Flask, portal: FlaskClient, publisher: Account
) -> None:
    with get_db(app).session() as session:
        owner = session.get(factories.Publisher, publisher.id)
        hook = factories.postback(session, owner, name="Tracker")
        shop = factories.program(session)
        for state, code in [("succeeded", 200), ("failed", 500)]:
            sale = factories.transaction(session, owner, shop)
            factories.delivery(
                session,
                hook,
                factories.event(session, sale),
                state=state,
                attempt_count=1,
                last_status_code=code,
            )

    page = portal.get("/portal/postbacks").get_data(as_text=True)

    assert "Tracker" in page and "badge-failing" in page
    assert "failed · HTTP 500" in page
    # Next to a failing postback: where to get back what the tracker missed.
    assert page.count('href="/portal/conversions#recover"') == 1
    assert "50% <span" in page


def test_the_live_preview_expands_and_lints_as_the_publisher_types(portal: FlaskClient, token: str) -> None:
    response = portal.post(
        "/portal/postbacks/preview",
        data={
            "url": "http://t.example/pb?cid=#fobs#&st=#status#",
            "method": "GET",
            "status_map.approved": "sale",
        },
        headers={"X-CSRFToken": token},
    )

    body = response.get_json()
    assert body["url"] == "http://t.example/pb?cid=cl1ck-4f2a&st=sale"
    assert [(f["severity"], f["code"]) for f in body["findings"]] == [("warning", "insecure_http")]


def test_the_preview_needs_the_csrf_header(portal: FlaskClient) -> None:
    assert portal.post("/portal/postbacks/preview", data={"url": "https://t.example/"}).status_code == 400


def test_the_palette_lists_every_catalog_macro_with_its_description(portal: FlaskClient) -> None:
    import macros

    page = portal.get("/portal/postbacks/new").get_data(as_text=True)

    buttons = re.findall(r'class="macro" data-token="([^"]+)" title="([^"]+)"', page)
    assert [token for token, _ in buttons] == [spec.token for spec in macros.CATALOG]
    # Tooltips are plain text: the catalog's Markdown code marks are for the README.
    assert buttons[0][1].startswith("Sub-tracking value fobs the publisher put on the click")
    assert not any("`" in title for _, title in buttons)
    assert "Any <code>strftime</code> pattern" in page and "`strftime`" not in page


def test_signing_secret_can_be_generated_rotated_and_removed(
    app: Flask, portal: FlaskClient, publisher: Account, token: str
) -> None:
    postback_id = create(app, publisher)
    url = f"/portal/postbacks/{postback_id}/secret"

    portal.post(url, data={"csrf_token": token, "action": "generate"})
    first = stored(app, postback_id).signing_secret
    portal.post(url, data={"csrf_token": token, "action": "rotate"})
    second = stored(app, postback_id).signing_secret
    portal.post(url, data={"csrf_token": token, "action": "remove"})

    assert first and second and first != second and first.startswith("whsec_")
    assert stored(app, postback_id).signing_secret is None


POST_ROUTES = [
    "/portal/postbacks/{id}",
    "/portal/postbacks/{id}/pause",
    "/portal/postbacks/{id}/resume",
    "/portal/postbacks/{id}/delete",
    "/portal/postbacks/{id}/secret",
    "/portal/postbacks/{id}/test",
    "/portal/postbacks/{id}/backfill",
]


@pytest.mark.parametrize("route", ["/portal/postbacks/{id}", "/portal/postbacks/{id}/backfill"])
def test_another_publishers_postback_pages_are_not_found(
    app: Flask, portal: FlaskClient, other: Account, route: str
) -> None:
    theirs = create(app, other)

    assert portal.get(route.format(id=theirs)).status_code == 404


@pytest.mark.parametrize("route", POST_ROUTES)
def test_another_publishers_postback_cannot_be_changed(
    app: Flask, portal: FlaskClient, other: Account, token: str, route: str
) -> None:
    theirs = create(app, other)

    response = portal.post(route.format(id=theirs), data=form(token, since="2026-11-01", action="remove"))

    assert response.status_code == 404
    assert stored(app, theirs).active and stored(app, theirs).url_template.startswith(
        "https://tracker.example"
    )


@pytest.mark.parametrize("route", ["/portal/postbacks", *POST_ROUTES])
def test_every_postback_form_needs_a_csrf_token(
    app: Flask, portal: FlaskClient, publisher: Account, route: str
) -> None:
    mine = create(app, publisher)

    response = portal.post(route.format(id=mine), data={"url": FLEXOFFERS, "since": "2026-11-01"})

    assert response.status_code == 400
    assert "The CSRF token is missing." in response.get_data(as_text=True)


def test_a_token_from_another_session_is_refused(app: Flask, portal: FlaskClient, other: Account) -> None:
    stranger = app.test_client()
    log_in(stranger, other)
    foreign_token = csrf_token(stranger, "/portal/postbacks/new")

    response = portal.post("/portal/postbacks", data=form(foreign_token))

    assert response.status_code == 400


def test_the_engines_failing_mark_shows_and_resuming_clears_it(
    app: Flask, portal: FlaskClient, publisher: Account, token: str
) -> None:
    since = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)
    postback_id = create(app, publisher, failing_since=since)

    listing = portal.get("/portal/postbacks").get_data(as_text=True)
    banner = portal.get("/portal/deliveries").get_data(as_text=True)
    portal.post(f"/portal/postbacks/{postback_id}/pause", data={"csrf_token": token})
    portal.post(f"/portal/postbacks/{postback_id}/resume", data={"csrf_token": token})

    assert "badge-failing" in listing and "since 2026-11-18 09:30 UTC" in listing
    assert "has been failing since 2026-11-18 09:30 UTC" in banner
    assert 'href="/portal/conversions#recover"' in banner
    assert stored(app, postback_id).failing_since is None
