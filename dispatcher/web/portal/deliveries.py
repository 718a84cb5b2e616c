"""My deliveries: the publisher's own log with filters, one delivery with every attempt, and replay."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from dispatcher.broker import get_broker
from dispatcher.db import request_session
from dispatcher.portal import deliveries, postbacks, replays
from dispatcher.validation import FieldError
from dispatcher.web.portal.common import blueprint, found, publisher_id, publisher_required


@blueprint.get("/deliveries")
@publisher_required
def deliveries_list() -> ResponseReturnValue:
    session = request_session()
    status = 200
    error = None
    try:
        filters = deliveries.parse_filters(request.args)
    except FieldError as exc:
        filters, error, status = deliveries.Filters(), exc, 400
    rows = deliveries.search(session, publisher_id(), filters, deliveries.PAGE_SIZE + 1)
    more = len(rows) > deliveries.PAGE_SIZE
    rows = rows[: deliveries.PAGE_SIZE]
    next_args = {**filters.as_args(), "before": str(rows[-1].delivery.id)} if more else None
    page = render_template(
        "portal/deliveries.html",
        rows=rows,
        filters=filters,
        args=request.args,
        error=error,
        next_args=next_args,
        states=deliveries.STATES,
        postbacks=postbacks.list_postbacks(session, publisher_id()),
        troubled=deliveries.troubled_postbacks(session, publisher_id()),
    )
    return page, status


@blueprint.get("/deliveries/<int:delivery_id>")
@publisher_required
def delivery_detail(delivery_id: int) -> ResponseReturnValue:
    session = request_session()
    delivery = found(deliveries.get_delivery(session, publisher_id(), delivery_id))
    about = deliveries.context_of(session, delivery)
    return render_template("portal/delivery.html", delivery=delivery, **about)


@blueprint.post("/deliveries/<int:delivery_id>/replay")
@publisher_required
def replay_delivery(delivery_id: int) -> ResponseReturnValue:
    session = request_session()
    delivery = found(deliveries.get_delivery(session, publisher_id(), delivery_id))
    outcome = replays.replay(session, get_broker(current_app).client(), delivery)
    flash(outcome.message, "success" if outcome.replayed else "error")
    return redirect(url_for("portal.delivery_detail", delivery_id=delivery_id))
