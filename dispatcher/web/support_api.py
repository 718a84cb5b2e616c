"""The staff side of the publisher API's delivery routes: the same URLs, answered for a `stf_` token.

Why the same routes and not `/api/v1/support/...`: the contract (DESIGN.md) says "a publisher sees only its
own; staff see all" on `/api/v1/deliveries`, and a script written against one works against the other. The
publisher views are wrapped with `dispatcher.staff_auth.staff_alternative`, which hands a valid staff token to
these functions; every other request goes on to the publisher checks unchanged. Staff get the console's search
filters (`sales_id`, `click_id`, `program_id`, ... in `dispatcher.support.search`); replays are audited.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from dispatcher import delivery_details
from dispatcher.broker import get_broker
from dispatcher.db import request_session
from dispatcher.models import Click, Delivery, Transaction
from dispatcher.staff_auth import current_api_staff_id
from dispatcher.support import actions, search
from dispatcher.validation import only_known


def _row_json(row: search.Row, last: delivery_details.LastRequest | None) -> dict[str, Any]:
    return {
        **delivery_details.delivery_json(row.delivery, last),
        "publisher_id": row.delivery.publisher_id,
        "publisher": row.publisher_name,
        "postback": row.postback_name,
        "program": row.program_name,
        "transaction_id": row.delivery.transaction_id,
        "destination_host": row.delivery.destination_host,
        "order_number": row.order_number,
        "sales_id": row.sales_id,
        "event": row.event_kind,
        "sub_id": row.sub_id,
        "click_id": row.click_id,
    }


def list_deliveries() -> ResponseReturnValue:
    session = request_session()
    only_known(request.args, search.FILTER_PARAMETERS, "delivery filter")  # a misspelt one is never ignored
    page = search.search(session, search.parse_filters(request.args))
    sent = delivery_details.last_requests(session, (row.delivery.id for row in page.rows))
    rows = [_row_json(row, sent.get(row.delivery.id)) for row in page.rows]
    return jsonify({"deliveries": rows, "next_before": page.next_before})


def get_delivery(delivery_id: int) -> ResponseReturnValue:
    session = request_session()
    delivery = delivery_details.with_attempts(session, delivery_id)
    if delivery is None:
        abort(404, description=f"delivery {delivery_id} not found")
    sale = session.get(Transaction, delivery.transaction_id)
    assert sale is not None
    click = session.get(Click, sale.click_pk) if sale.click_pk is not None else None
    body = delivery_details.delivery_json(delivery, delivery_details.last_request(delivery))
    body.update(
        publisher_id=delivery.publisher_id,
        transaction_id=delivery.transaction_id,
        sales_id=sale.sales_id,
        order_number=sale.order_number,
        click_id=click.click_id if click is not None else None,  # as the list gives it
        destination_host=delivery.destination_host,
        attempts=[
            {
                **delivery_details.attempt_json(attempt),
                "request_headers": attempt.request_headers,
                "worker": attempt.worker,
            }
            for attempt in delivery.attempts
        ],
    )
    return jsonify(body)


def replay_delivery(delivery_id: int) -> ResponseReturnValue:
    session = request_session()
    if session.get(Delivery, delivery_id) is None:
        abort(404, description=f"delivery {delivery_id} not found")
    client = get_broker(current_app).client()
    outcome = actions.replay_delivery(session, client, current_api_staff_id(), delivery_id)
    if not outcome.done:
        return jsonify({"error": outcome.message, "fields": {}}), 409
    delivery = session.get(Delivery, delivery_id)
    assert delivery is not None
    return jsonify(
        {
            "replayed": True,
            "message": outcome.message,
            "delivery": delivery_details.delivery_json(delivery, delivery_details.last_request(delivery)),
        }
    )
