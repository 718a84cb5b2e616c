"""Transactions: the list with the API's filters (keyset pages), one with its history, and changing one
(approve, decline, reverse, adjust the amount) through the ledger's own `change_status`, as the API does."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from dispatcher.advertiser import transactions
from dispatcher.advertiser.integration import programs
from dispatcher.db import request_session
from dispatcher.ledger import StatusChange, StatusConflict, TransactionNotFound, change_status
from dispatcher.ledger.handoff import hand_over
from dispatcher.ledger.reports import EVENTS, STATUSES
from dispatcher.ledger.status import ADJUSTABLE, TARGETS, TRANSITIONS
from dispatcher.models import Channel
from dispatcher.validation import FieldError
from dispatcher.web.advertiser_portal.common import advertiser_id, advertiser_required, blueprint, found

DETAIL = "advertiser/transaction.html"


@blueprint.get("/transactions")
@advertiser_required
def transactions_list() -> ResponseReturnValue:
    session = request_session()
    status, error = 200, None
    try:
        filters = transactions.parse_filters(request.args)
    except FieldError as exc:
        filters, error, status = transactions.Filters(), exc, 400
    rows = transactions.search(session, advertiser_id(), filters, transactions.PAGE_SIZE + 1)
    more = len(rows) > transactions.PAGE_SIZE
    rows = rows[: transactions.PAGE_SIZE]
    args = {name: value for name, value in request.args.items() if name != "before" and value.strip()}
    page = render_template(
        "advertiser/transactions.html",
        rows=rows,
        args=args if error is None else {},
        error=error,
        next_args={**args, "before": str(rows[-1].id)} if more else None,
        statuses=STATUSES,
        events=EVENTS,
        targets=TARGETS,
        programs=programs(session, advertiser_id()),
    )
    return page, status


blueprint.add_url_rule("/", "index", transactions_list)


@blueprint.get("/transactions/<sales_id>")
@advertiser_required
def transaction_detail(sales_id: str) -> ResponseReturnValue:
    return _detail(sales_id)


@blueprint.post("/transactions/<sales_id>/status")
@advertiser_required
def change_transaction(sales_id: str) -> ResponseReturnValue:
    """One change: `status` (approved, declined, reversed) or a new `sale_amount` (an adjustment)."""
    session = request_session()
    change = StatusChange(
        status=request.form.get("status") or None, sale_amount=request.form.get("sale_amount") or None
    )
    try:
        changed = change_status(session, advertiser_id(), sales_id, change, Channel.API.value)
    except TransactionNotFound:
        session.rollback()
        return _detail(sales_id)  # the 404, as for any id that is not this advertiser's
    except StatusConflict as exc:
        session.rollback()
        message = f"Not changed: {exc.problem} (its status is {exc.current_status})."
        return _detail(sales_id, error=message, status=409)
    except FieldError as exc:
        session.rollback()
        return _detail(
            sales_id, error=f"Not changed: {exc}", status=400, sale_amount=request.form.get("sale_amount")
        )
    hand_over(current_app, changed.new_delivery_ids)
    postbacks = len(changed.new_delivery_ids)
    # "approved, now approved" said the same twice; an adjustment says what the status stays.
    done = changed.kind if changed.kind == changed.status else f"{changed.kind}, now {changed.status}"
    flash(
        f"Transaction {changed.sales_id} {done}; "
        f"{postbacks} postback{'s' if postbacks != 1 else ''} to send.",
        "success",
    )
    return redirect(url_for("advertiser.transaction_detail", sales_id=changed.sales_id))


def _detail(
    sales_id: str, *, error: str | None = None, status: int = 200, **extra: Any
) -> ResponseReturnValue:
    row, events = found(transactions.get(request_session(), advertiser_id(), sales_id))
    # What the page offers; the ledger decides in the end (a stale page gets its 409 naming the status).
    page = render_template(
        DETAIL,
        sale=row,
        events=events,
        error=error,
        allowed=TRANSITIONS.get(row.status, ()),
        adjustable=row.status in ADJUSTABLE,
        **extra,
    )
    return page, status
