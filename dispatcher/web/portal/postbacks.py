"""Postback pages: list with health, create and edit (with live preview and lint), pause, resume, delete,
signing secret, send test and backfill."""

from __future__ import annotations

from typing import Any

import redis
from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session, sessionmaker

import macros
from dispatcher import backfill, postback_pausing, postback_rules
from dispatcher.broker import get_broker
from dispatcher.db import get_db, request_session
from dispatcher.models import Postback
from dispatcher.models.postbacks import POSTBACK_EVENTS
from dispatcher.portal import postbacks, programs, test_send
from dispatcher.portal.preview import preview, preview_status
from dispatcher.portal.traffic_sources import list_sources
from dispatcher.postback_rules import Invalid
from dispatcher.validation import FieldError
from dispatcher.web.portal.common import blueprint, found, publisher_id, publisher_required, settings

FORM = "portal/postback_form.html"


@blueprint.get("/postbacks")
@publisher_required
def postbacks_list() -> ResponseReturnValue:
    session = request_session()
    rows = postbacks.list_postbacks(session, publisher_id())
    states = postbacks.health(session, [row.id for row in rows])
    items = [(row, states[row.id], postbacks.status_of(row, states[row.id])) for row in rows]
    return render_template("portal/postbacks.html", items=items)


# The list's endpoint is also the portal's landing page after login.
blueprint.add_url_rule("/", "index", postbacks_list)
blueprint.add_url_rule("/postbacks", "postbacks", postbacks_list)


@blueprint.get("/postbacks/new")
@publisher_required
def new_postback() -> ResponseReturnValue:
    values = postback_rules.PostbackSpec(url="").as_values()
    return _form(values, {}, None)


@blueprint.post("/postbacks")
@publisher_required
def create_postback() -> ResponseReturnValue:
    session = request_session()
    values = postback_rules.form_values(request.form)
    try:
        spec = _checked(values, None)
    except Invalid as invalid:
        return _form(values, invalid.problems, None, 400)
    postback = postbacks.create_postback(session, publisher_id(), spec)
    session.commit()
    flash("Postback saved. Send a test to see your tracker's answer.", "success")
    return redirect(url_for("portal.edit_postback", postback_id=postback.id))


@blueprint.get("/postbacks/<int:postback_id>")
@publisher_required
def edit_postback(postback_id: int) -> ResponseReturnValue:
    postback = _own(postback_id)
    return _form(postbacks.spec_of(postback).as_values(), {}, postback)


@blueprint.post("/postbacks/<int:postback_id>")
@publisher_required
def update_postback(postback_id: int) -> ResponseReturnValue:
    session = request_session()
    postback = _own(postback_id)
    values = {**postback_rules.form_values(request.form), "active": postback.active}
    try:
        spec = _checked(values, postback)
    except Invalid as invalid:
        return _form(values, invalid.problems, postback, 400)
    postbacks.update_postback(session, postback, spec)
    session.commit()
    flash("Postback saved.", "success")
    return redirect(url_for("portal.edit_postback", postback_id=postback.id))


@blueprint.post("/postbacks/<int:postback_id>/pause")
@publisher_required
def pause_postback(postback_id: int) -> ResponseReturnValue:
    return _set_active(postback_id, False, "Postback paused: nothing is sent until you resume it.")


@blueprint.post("/postbacks/<int:postback_id>/resume")
@publisher_required
def resume_postback(postback_id: int) -> ResponseReturnValue:
    return _set_active(postback_id, True, "Postback resumed.")


def _set_active(postback_id: int, active: bool, message: str) -> ResponseReturnValue:
    session = request_session()
    postback_pausing.set_active(_own(postback_id), active)
    session.commit()
    flash(message, "success")
    if request.form.get("back") == "list":
        return redirect(url_for("portal.postbacks"))
    return redirect(url_for("portal.edit_postback", postback_id=postback_id))


@blueprint.post("/postbacks/<int:postback_id>/delete")
@publisher_required
def delete_postback(postback_id: int) -> ResponseReturnValue:
    session = request_session()
    postbacks.delete_postback(_own(postback_id))
    session.commit()
    flash("Postback deleted. Its deliveries stay in My deliveries.", "success")
    return redirect(url_for("portal.postbacks"))


@blueprint.post("/postbacks/<int:postback_id>/secret")
@publisher_required
def signing_secret(postback_id: int) -> ResponseReturnValue:
    session = request_session()
    postback = _own(postback_id)
    enable = request.form.get("action") != "remove"
    postbacks.set_signing(postback, enable)
    session.commit()
    flash(
        "New signing secret in use." if enable else "Signing secret removed: postbacks go unsigned.",
        "success",
    )
    return redirect(url_for("portal.edit_postback", postback_id=postback_id) + "#signing")


@blueprint.post("/postbacks/preview")
@publisher_required
def preview_postback() -> ResponseReturnValue:
    """Called by portal.js as the publisher types (form fields, CSRF token in a header)."""
    status = preview_status(request.form.get("preview_status"))
    values = postback_rules.form_values(request.form)
    return jsonify(preview(values, settings().allowed_networks, status).as_json())


@blueprint.post("/postbacks/<int:postback_id>/test")
@publisher_required
def test_postback(postback_id: int) -> ResponseReturnValue:
    postback = _own(postback_id)
    given = {key: value for key, value in request.form.items() if key != "csrf_token"}
    try:
        chosen = test_send.values_given(given)
    except FieldError as error:
        values = postbacks.spec_of(postback).as_values()
        return _form(values, {}, postback, 400, test_given=given, test_error=str(error))
    result = test_send.send_test(postback, settings().allowed_networks, given=chosen)
    return _form(postbacks.spec_of(postback).as_values(), {}, postback, test_result=result, test_given=given)


@blueprint.post("/postbacks/<int:postback_id>/backfill")
@publisher_required
def backfill_postback(postback_id: int) -> ResponseReturnValue:
    postback = _own(postback_id)
    raw = request.form.get("since", "")
    try:
        since = backfill.parse_since(raw)
        started = backfill.start(_sessions(), _redis(), publisher_id(), postback.id, since)
    except FieldError as error:
        if request.accept_mimetypes.best == "application/json":
            return jsonify({"error": str(error), "fields": {error.field: error.problem}}), 400
        return _form(postbacks.spec_of(postback).as_values(), {"since": str(error)}, postback, 400)
    if request.accept_mimetypes.best == "application/json":
        return jsonify(started.as_json()), 200 if started.result else 202
    flash(started.message, "success")
    return redirect(url_for("portal.edit_postback", postback_id=postback_id) + "#backfill")


@blueprint.get("/postbacks/<int:postback_id>/backfill")
@publisher_required
def backfill_status(postback_id: int) -> ResponseReturnValue:
    postback = _own(postback_id)
    return jsonify(backfill.status(_redis(), postback.id))


def _sessions() -> sessionmaker[Session]:
    return get_db(current_app).session_factory


def _redis() -> redis.Redis:
    return get_broker(current_app).client()


def _own(postback_id: int) -> Postback:
    return found(postbacks.get_postback(request_session(), publisher_id(), postback_id))


def _scoped_programs(postback: Postback | None) -> tuple[int, ...]:
    return postbacks.spec_of(postback).program_ids if postback is not None else ()


def _checked(values: dict[str, Any], postback: Postback | None) -> postback_rules.PostbackSpec:
    session = request_session()
    problems = postback_rules.scope_problems(request.form)
    try:
        spec = postback_rules.check(
            values,
            own_source_ids=postbacks.own_source_ids(session, publisher_id()),
            programs=programs.choosable(session, _scoped_programs(postback)),
            allowed_networks=settings().allowed_networks,
        )
    except Invalid as invalid:
        raise Invalid({**problems, **invalid.problems}) from None
    if problems:
        raise Invalid(problems)
    return spec


def _form(
    values: dict[str, Any],
    problems: dict[str, str],
    postback: Postback | None,
    status: int = 200,
    *,
    test_result: test_send.TestResult | None = None,
    test_given: dict[str, str] | None = None,
    test_error: str | None = None,
) -> ResponseReturnValue:
    session = request_session()
    health = postbacks.health(session, [postback.id])[postback.id] if postback else None
    page = render_template(
        FORM,
        values=values,
        problems=problems,
        postback=postback,
        health=health,
        status=postbacks.status_of(postback, health) if postback and health else None,
        preview=preview(values, settings().allowed_networks),
        sources=list_sources(session, publisher_id()),
        programs=programs.listed(session, _scoped_programs(postback)),
        catalog=macros.CATALOG,
        modifiers=macros.MODIFIERS,
        events=POSTBACK_EVENTS,
        statuses=postback_rules.STATUSES,
        content_types=list(postback_rules.CONTENT_TYPES),
        test_result=test_result,
        test_given=test_given or {},
        test_error=test_error,
        test_events=test_send.EVENTS,
        test_statuses=test_send.STATUSES,
        backfill_state=backfill.status(_redis(), postback.id) if postback else None,
    )
    return page, status
