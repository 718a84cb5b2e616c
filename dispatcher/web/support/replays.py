"""Bulk replay: a filter, a confirmation naming how many will be sent, a job with a progress bar."""

from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from dispatcher.db import request_session
from dispatcher.support import bulk
from dispatcher.validation import FieldError
from dispatcher.web.support.common import admin_required, blueprint, found, redis_client, staff_id

FORM = "support/bulk_replay.html"


@blueprint.get("/replays/new")
@admin_required
def bulk_replay_form() -> ResponseReturnValue:
    """With `since` (and any narrowing) in the query: the confirmation, with the count."""
    try:
        bulk.check_narrowable(request.args)
        if not request.args.get("since"):
            return render_template(FORM, args=request.args, count=None, error=None)
        criteria = bulk.parse_filter(request.args)
    except FieldError as error:
        return render_template(FORM, args=request.args, count=None, error=error), 400
    count = bulk.count(request_session(), criteria)
    return render_template(FORM, args=request.args, count=count, error=None)


@blueprint.post("/replays")
@admin_required
def bulk_replay_start() -> ResponseReturnValue:
    session = request_session()
    try:
        criteria = bulk.parse_filter(request.form)
        confirmed = int(request.form.get("confirmed_count", "-1"))
        entry = bulk.start(session, redis_client(), staff_id(), criteria, confirmed)
    except FieldError as error:
        session.rollback()
        return render_template(FORM, args=request.form, count=None, error=error), 400
    except (ValueError, bulk.CountChanged) as exc:
        session.rollback()
        count = exc.count if isinstance(exc, bulk.CountChanged) else None
        message = "The number of matching deliveries changed; check it and confirm again."
        return render_template(FORM, args=request.form, count=count, error=message), 409
    flash(f"Bulk replay of {entry.detail['total']} deliveries started.", "success")
    return redirect(url_for("support.bulk_replay_status", entry_id=entry.id))


@blueprint.get("/replays/<int:entry_id>")
@admin_required
def bulk_replay_status(entry_id: int) -> ResponseReturnValue:
    session = request_session()
    entry = found(bulk.get_entry(session, entry_id))
    state = bulk.progress(session, redis_client(), entry)
    if request.accept_mimetypes.best == "application/json":
        return jsonify(state.as_json())
    return render_template("support/replay_status.html", entry=entry, progress=state)
