"""Bulk status changes: "approve (decline, reverse) all N matching this filter", confirmed, run as a job."""

from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from dispatcher.advertiser import bulk
from dispatcher.db import request_session
from dispatcher.validation import FieldError
from dispatcher.web.advertiser_portal.common import (
    advertiser_id,
    advertiser_required,
    blueprint,
    found,
    redis_client,
    user_id,
)

CONFIRM = "advertiser/bulk_confirm.html"


@blueprint.get("/bulk")
@advertiser_required
def bulk_confirm() -> ResponseReturnValue:
    """The confirmation: what the filter matches now, and the button that starts the change."""
    try:
        wanted = bulk.parse(request.args)
    except FieldError as error:
        return render_template(CONFIRM, wanted=None, count=None, error=error), 400
    count = bulk.count(request_session(), advertiser_id(), wanted)
    return render_template(CONFIRM, wanted=wanted, count=count, error=None)


@blueprint.post("/bulk")
@advertiser_required
def bulk_start() -> ResponseReturnValue:
    session = request_session()
    try:
        wanted = bulk.parse(request.form)
        confirmed = _confirmed(request.form.get("confirmed_count", ""))
        entry = bulk.start(session, redis_client(), advertiser_id(), user_id(), wanted, confirmed)
    except FieldError as error:
        session.rollback()
        return render_template(CONFIRM, wanted=None, count=None, error=error), 400
    except bulk.CountChanged as changed:
        session.rollback()
        message = (
            f"The number of matching transactions changed from {confirmed} to {changed.count}; "
            "check it and confirm again."
        )
        return render_template(CONFIRM, wanted=wanted, count=changed.count, error=message), 409
    total = entry.detail["total"]
    flash(f"Changing {total} transaction{'s' if total != 1 else ''} to {wanted.target}: started.", "success")
    return redirect(url_for("advertiser.bulk_status", entry_id=entry.id))


@blueprint.get("/bulk/<int:entry_id>")
@advertiser_required
def bulk_status(entry_id: int) -> ResponseReturnValue:
    entry = found(bulk.get_entry(request_session(), advertiser_id(), entry_id))
    state = bulk.progress(redis_client(), entry)
    if request.accept_mimetypes.best == "application/json":
        return jsonify(state.as_json())
    return render_template("advertiser/bulk_status.html", entry=entry, progress=state)


def _confirmed(raw: str) -> int:
    if not raw.strip().isdigit():
        raise FieldError("confirmed_count", raw, "must be the count the confirmation page showed")
    return int(raw)
