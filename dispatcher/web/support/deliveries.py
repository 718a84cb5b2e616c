"""Search every delivery, open a transaction with all its deliveries and attempts, replay one."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from dispatcher.db import request_session
from dispatcher.ledger import ids
from dispatcher.support import actions, audit, search, transactions
from dispatcher.validation import FieldError
from dispatcher.web.support.common import blueprint, found, redis_client, staff_id, staff_required


@blueprint.get("/deliveries")
@staff_required
def deliveries_list() -> ResponseReturnValue:
    status, error = 200, None
    try:
        filters = search.parse_filters(request.args)
    except FieldError as exc:
        filters, error, status = search.Filters(), exc, 400
    page = search.search(request_session(), filters) if error is None else search.Page([], None)
    next_args = {**filters.as_args(), "before": str(page.next_before)} if page.next_before else None
    html = render_template(
        "support/deliveries.html",
        page=page,
        filters=filters,
        args=request.args,
        error=error,
        next_args=next_args,
        states=search.STATES,
        error_classes=search.ERROR_CLASSES,
    )
    return html, status


@blueprint.get("/transactions/<int:transaction_id>")
@staff_required
def transaction_detail(transaction_id: int) -> ResponseReturnValue:
    session = request_session()
    view = found(transactions.transaction_view(session, transaction_id))
    replays = {
        delivery.id: audit.entries_for(session, "delivery", delivery.id) for delivery in view.deliveries
    }
    # Set by a replay's redirect: its message is shown in that delivery's card, where the page opens.
    acted_on = request.args.get("replayed", type=int)
    if acted_on not in {delivery.id for delivery in view.deliveries}:
        acted_on = None
    return render_template("support/transaction.html", view=view, history=replays, acted_on=acted_on)


@blueprint.get("/sales/<sales_id>")
@staff_required
def sale_detail(sales_id: str) -> ResponseReturnValue:
    # Nothing a sales id can be is looked up (PostgreSQL refuses a NUL in text with an error, not no row).
    if not ids.could_be_sales_id(sales_id):
        abort(404)
    transaction_id = found(transactions.transaction_by_sales_id(request_session(), sales_id))
    return redirect(url_for("support.transaction_detail", transaction_id=transaction_id))


@blueprint.get("/deliveries/<int:delivery_id>")
@staff_required
def delivery_detail(delivery_id: int) -> ResponseReturnValue:
    transaction_id = found(transactions.transaction_of_delivery(request_session(), delivery_id))
    target = url_for("support.transaction_detail", transaction_id=transaction_id)
    return redirect(f"{target}#delivery-{delivery_id}")


@blueprint.post("/deliveries/<int:delivery_id>/replay")
@staff_required
def replay_delivery(delivery_id: int) -> ResponseReturnValue:
    session = request_session()
    transaction_id = found(transactions.transaction_of_delivery(session, delivery_id))
    outcome = actions.replay_delivery(session, redis_client(), staff_id(), delivery_id)
    flash(outcome.message, "success" if outcome.done else "error")
    target = url_for("support.transaction_detail", transaction_id=transaction_id, replayed=delivery_id)
    return redirect(f"{target}#delivery-{delivery_id}")
