"""GET|POST /s2s/transaction: for platforms that can only fire a URL, and for thank-you-page image pixels.

The S2S token travels in the query string (these platforms cannot set headers); it is a separate credential
from the API key so it can be rotated without touching the API integration. `&pixel=1` answers a 1x1 GIF.

Such platforms approve, decline and reverse by firing the order's URL again with its new `status` (or `sa`):
that changes the recorded transaction (200, `"changed": true`, postbacks as for the API's status route, see
`dispatcher.ledger.restatements`); the same status and amount again is a duplicate.
"""

from __future__ import annotations

import base64
import json

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from dispatcher.accounts import S2S_TOKEN_KIND
from dispatcher.auth import require_advertiser_s2s_token
from dispatcher.db import get_db, request_session
from dispatcher.ledger import Rejected, Restated, SaleReport, record_sales, reports
from dispatcher.ledger.fields import is_blank
from dispatcher.ledger.handoff import hand_over
from dispatcher.ledger.restatements import record_or_restate, restated
from dispatcher.models import Channel
from dispatcher.web.advertiser_api import recorded_response
from dispatcher.web.s2s_params import as_written, parse
from dispatcher.web.sale_reports import advertiser_and_report

blueprint = Blueprint("s2s", __name__, url_prefix="/s2s")
TRANSPARENT_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@blueprint.route("/transaction", methods=["GET", "POST"])
def transaction() -> ResponseReturnValue:
    found = parse(request.values)  # query string, plus a form body when POSTed
    g.s2s_ignored = found.ignored
    channel = Channel.PIXEL.value if found.pixel else Channel.S2S.value
    sale = found.report
    if found.refusal is not None:
        require_advertiser_s2s_token(request_session(), found.token)  # a 401 comes first, as always
        raise found.refusal
    if _names_only_an_order(sale):  # a status change by order number, or a clickless sale: not the hot path
        session = request_session()
        advertiser = require_advertiser_s2s_token(session, found.token)
        [outcome] = record_or_restate(session, advertiser.id, [sale], channel)
    else:
        # The hot paths' driver connection, not the request's ORM session (see dispatcher.driver_sql).
        with get_db(current_app).driver(writes=True) as connection:
            advertiser, report, click = advertiser_and_report(
                connection, found.token, S2S_TOKEN_KIND, sale, reports.STATUSES
            )
            [recorded] = record_sales(
                connection, advertiser.id, [report], channel, click_read=click, restating=True
            )
        [outcome] = restated(request_session(), advertiser.id, [(sale, recorded)], channel)
    if isinstance(outcome, Rejected):
        error = as_written(outcome.error, found.written)
        if outcome.current_status is not None:
            return _conflict(error.field, error.problem, outcome.current_status)
        raise error
    if isinstance(outcome, Restated):
        hand_over(current_app, outcome.new_delivery_ids)
        response: ResponseReturnValue = jsonify(outcome.as_json())
    else:
        response = recorded_response(outcome)  # hands the deliveries to RQ
    if found.pixel:
        return Response(TRANSPARENT_GIF, mimetype="image/gif", headers={"Cache-Control": "no-store"})
    return response


@blueprint.after_request
def _list_ignored(response: Response) -> Response:
    """Every JSON answer, refusals included, lists the parameters nothing read: a misspelt `sa` is seen."""
    ignored = g.get("s2s_ignored")
    if ignored and response.mimetype == "application/json":
        body = response.get_json(silent=True)
        if isinstance(body, dict):
            response.set_data(json.dumps({**body, "ignored": ignored}))
    return response


def _names_only_an_order(sale: SaleReport) -> bool:
    return all(is_blank(value) for value in (sale.click_id, sale.publisher_id, sale.traffic_source_id))


def _conflict(name: str, problem: str, current_status: str) -> ResponseReturnValue:
    """409: the new status does not fit the transaction's (the API's status route answers the same)."""
    body = {"error": f"{name}: {problem}", "fields": {name: problem}, "current_status": current_status}
    return jsonify(body), 409
