"""GET|POST /s2s/transaction: for platforms that can only fire a URL, and for thank-you-page image pixels.

The S2S token travels in the query string (these platforms cannot set headers); it is a separate credential
from the API key so it can be rotated without touching the API integration. `&pixel=1` answers a 1x1 GIF.
"""

from __future__ import annotations

import base64

from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue

from dispatcher.accounts import S2S_TOKEN_KIND
from dispatcher.db import get_db
from dispatcher.ledger import Rejected, SaleReport, record_sales
from dispatcher.models import Channel
from dispatcher.validation import FieldError
from dispatcher.web.advertiser_api import recorded_response
from dispatcher.web.sale_reports import advertiser_and_report

blueprint = Blueprint("s2s", __name__, url_prefix="/s2s")

# Query names, short as trackers' postback URLs use them -> the report's fields.
QUERY_NAMES = {
    "clickid": "click_id",
    "on": "order_number",
    "sa": "sale_amount",
    "cur": "currency",
    "event": "event",
    "status": "status",
    "ca": "commission",
    "et": "event_time",
    "pub": "publisher_id",
    "ts": "traffic_source_id",
    "program": "program_id",
}
TRANSPARENT_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@blueprint.route("/transaction", methods=["GET", "POST"])
def transaction() -> ResponseReturnValue:
    values = request.values  # query string, plus a form body when POSTed
    # The hot paths' driver connection, not the request's ORM session (see dispatcher.driver_sql).
    with get_db(current_app).driver(writes=True) as connection:
        pixel = values.get("pixel") == "1"
        sale = SaleReport(**{field: values.get(name) for name, field in QUERY_NAMES.items()})
        advertiser, report, click = advertiser_and_report(
            connection, values.get("token"), S2S_TOKEN_KIND, sale
        )
        channel = Channel.PIXEL.value if pixel else Channel.S2S.value
        outcome = record_sales(connection, advertiser.id, [report], channel, click_read=click)[0]
    if isinstance(outcome, Rejected):
        raise _in_query_names(outcome.error)
    response = recorded_response(outcome)  # hands the deliveries to RQ
    if pixel:
        return Response(TRANSPARENT_GIF, mimetype="image/gif", headers={"Cache-Control": "no-store"})
    return response


def _in_query_names(error: FieldError) -> FieldError:
    """The error names the parameter as the advertiser wrote it in the URL (`sa`, not `sale_amount`)."""
    name = next((query for query, field in QUERY_NAMES.items() if field == error.field), error.field)
    return FieldError(name, error.value, error.problem)
