"""The advertiser API: report transactions (JSON), upload them (CSV), change their status (by sales id or by
order number), and read them back (the advertiser's own only; another's sales id is a 404).

JSON numbers are parsed as Decimal, never float: 19.99 stays 19.99. Each view checks the credentials, hands
the values to the ledger, and, after the ledger has committed, hands the new deliveries to RQ.

A reported sale (`POST /api/v1/transactions`, the busiest call after a click) is answered in front of Flask
when it is recorded (see dispatcher.web.fast_path), with the body and headers `report()` would send; a
refusal or failure is raised by `report()`, so it is answered as before. Either way the body is read before
the database connection is taken and the key checked, so a slow upload holds no pooled connection; a body
longer than MAX_JSON_BYTES is not read, and is refused (413) once the key is known to be good.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, NoReturn

from flask import Blueprint, Flask, Response, current_app, jsonify, request, stream_with_context
from flask.typing import ResponseReturnValue
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.sansio.utils import get_content_length
from werkzeug.wsgi import get_input_stream

from dispatcher import logs
from dispatcher.accounts import ADVERTISER_KEY_KIND
from dispatcher.advertiser import shapes, transactions
from dispatcher.auth import bearer_token, require_advertiser_api_key
from dispatcher.db import get_db, request_session
from dispatcher.ledger import (
    OrderRef,
    Rejected,
    Restated,
    SaleReport,
    StatusChange,
    StatusConflict,
    TransactionNotFound,
    change_status,
    change_status_by_order,
    record_sales,
)
from dispatcher.ledger.csv_batch import CsvFile, LineOutcome, record_csv
from dispatcher.ledger.handoff import hand_over
from dispatcher.ledger.results import Recorded
from dispatcher.models import Channel
from dispatcher.validation import FieldError, TooLarge
from dispatcher.web.fast_path import Answer, Environ, Route, raise_failure, serve_fast
from dispatcher.web.sale_reports import advertiser_and_report

TRANSACTIONS_PATH = "/api/v1/transactions"
blueprint = Blueprint("advertiser_api", __name__, url_prefix=TRANSACTIONS_PATH)

MAX_JSON_BYTES = 64 * 1024
MAX_CSV_BYTES = 64 * 1024 * 1024


@blueprint.post("")
def report() -> ResponseReturnValue:
    raise_failure(request.environ)
    # The same work as the fast path, for the requests it leaves to Flask (those sending cookies).
    return recorded_response(_record_report(current_app, request.environ))


def _record_report(app: Flask, environ: Environ) -> Recorded:
    """Record the sale a `POST /api/v1/transactions` reports; refusals raise (HTTPException, FieldError)."""
    raw = _read_body(app, environ)  # before the connection: a slow upload holds none
    sale: SaleReport | None = None
    refusal: FieldError | None = None
    try:
        sale = None if raw is None else SaleReport.from_mapping(_json_object(raw))
    except FieldError as error:
        refusal = error
    # The hot paths' driver connection, not the request's ORM session (see dispatcher.driver_sql).
    with get_db(app).driver(writes=True) as connection:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if sale is None:  # refused, after the key check as always: a caller without a key learns 401 first
            require_advertiser_api_key(connection, authorization)
            if refusal is None:  # the body was too long to read
                _too_large()
            raise refusal
        token = bearer_token(authorization)
        advertiser, report, click = advertiser_and_report(connection, token, ADVERTISER_KEY_KIND, sale)
        outcome = record_sales(connection, advertiser.id, [report], Channel.API.value, click_read=click)[0]
    if isinstance(outcome, Rejected):
        raise outcome.error
    return outcome


CHANGE_FIELDS = ("status", "sale_amount", "commission")
ORDER_FIELDS = ("order_number", "event", "program_id")


@blueprint.get("")
def list_transactions() -> ResponseReturnValue:
    session = request_session()
    advertiser = require_advertiser_api_key(session)
    filters = transactions.parse_filters(request.args)
    rows = transactions.search(session, advertiser.id, filters, transactions.PAGE_SIZE + 1)
    more = len(rows) > transactions.PAGE_SIZE
    rows = rows[: transactions.PAGE_SIZE]
    return jsonify(
        {
            "transactions": [shapes.transaction_json(row) for row in rows],
            "next_before": rows[-1].id if more else None,
        }
    )


@blueprint.get("/<sales_id>")
def get_transaction(sales_id: str) -> ResponseReturnValue:
    session = request_session()
    advertiser = require_advertiser_api_key(session)
    found = transactions.get(session, advertiser.id, sales_id)
    if found is None:
        raise TransactionNotFound(sales_id if len(sales_id) <= 32 else sales_id[:32] + "...")
    row, events = found
    history = [shapes.history_json(event, row.currency) for event in events]
    return jsonify({**shapes.transaction_json(row), "events": history})


@blueprint.post("/<sales_id>/status")
def status(sales_id: str) -> ResponseReturnValue:
    session = request_session()
    advertiser = require_advertiser_api_key(session)
    body = _fields(json_body(), CHANGE_FIELDS)
    changed = change_status(session, advertiser.id, sales_id, StatusChange(**body), Channel.API.value)
    hand_over(current_app, changed.new_delivery_ids)
    return jsonify(changed.as_json())


# Not merged: `/api/v1/transactions//status` is the <sales_id> route without a sales id (404), not this one.
@blueprint.post("/status", merge_slashes=False)
def status_by_order() -> ResponseReturnValue:
    """The same change as `/<sales_id>/status`, for the transaction advertisers know by its order number."""
    session = request_session()
    advertiser = require_advertiser_api_key(session)
    body = _fields(json_body(), (*ORDER_FIELDS, *CHANGE_FIELDS))
    order = OrderRef(**{name: body.pop(name) for name in ORDER_FIELDS if name in body})
    changed = change_status_by_order(session, advertiser.id, order, StatusChange(**body), Channel.API.value)
    hand_over(current_app, changed.new_delivery_ids)
    return jsonify(changed.as_json())


def _fields(body: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise FieldError(unknown[0], body[unknown[0]], f"is not a field; known: {', '.join(known)}")
    return body


@blueprint.post("/batch")
def batch() -> ResponseReturnValue:
    session = request_session()
    advertiser = require_advertiser_api_key(session)
    if (request.content_length or 0) > MAX_CSV_BYTES:
        raise TooLarge("file", None, f"must be at most {MAX_CSV_BYTES // (1024 * 1024)} MB")
    if request.mimetype == "application/json":
        # Read as CSV, a JSON body became lines "missing order_number": say which route takes JSON.
        raise FieldError(
            "Content-Type",
            request.mimetype,
            "must be text/csv, or multipart/form-data with a file field "
            "(one sale as JSON: POST /api/v1/transactions)",
        )
    stream, owned = _csv_stream()
    upload = CsvFile(stream)
    results = record_csv(session, advertiser.id, upload, Channel.CSV.value)

    def body() -> Iterator[str]:
        counts = {"recorded": 0, "changed": 0, "duplicates": 0, "rejected": 0}
        separator = ""
        yield '{"results": ['
        for chunk in results:
            # stream_with_context: the request's app context is there while the body is streamed.
            hand_over(current_app, [i for line in chunk for i in _new_ids(line)])
            for line in chunk:
                counts[_count_key(line)] += 1
                yield separator + json.dumps({"line": line.line, **line.outcome.as_json()})
                separator = ",\n"
        summary = {"lines": sum(counts.values()), **counts}
        yield f'], "summary": {json.dumps(summary)}}}\n'

    response = Response(stream_with_context(body()), status=200, mimetype="application/json")
    if owned:
        response.call_on_close(stream.close)
    return response


def json_body() -> dict[str, Any]:
    raw = _read_body(current_app, request.environ)
    if raw is None:
        _too_large()
    return _json_object(raw)


def _read_body(app: Flask, environ: Environ) -> bytes | None:
    """The request body, or None when it is longer than MAX_JSON_BYTES: then it is not read (Content-Length
    says so) or not read further (a chunked body, which has no Content-Length, is cut off there)."""
    declared = get_content_length(environ.get("CONTENT_LENGTH"), environ.get("HTTP_TRANSFER_ENCODING"))
    if (declared or 0) > MAX_JSON_BYTES:
        return None
    # The stream `request.stream` is: never past Content-Length, nor past the app's MAX_CONTENT_LENGTH.
    stream = get_input_stream(environ, max_content_length=app.config["MAX_CONTENT_LENGTH"])
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_JSON_BYTES:
        chunk = stream.read(MAX_JSON_BYTES + 1 - size)  # may return less than asked: read on to the end
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    return None


def _too_large() -> NoReturn:
    raise TooLarge("body", None, f"must be at most {MAX_JSON_BYTES} bytes")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw, parse_float=Decimal, parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise FieldError("body", None, "is not UTF-8 text: send JSON in UTF-8") from None
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise FieldError("body", raw[:64].decode("utf-8", "replace"), "must be a JSON object") from None
    if not isinstance(body, dict):
        raise FieldError("body", body, "must be a JSON object")
    return body


def recorded_response(outcome: Recorded | Rejected) -> ResponseReturnValue:
    if isinstance(outcome, Rejected):
        raise outcome.error
    return jsonify(outcome.as_json()), _handed_over(current_app, outcome)


def _handed_over(app: Flask, outcome: Recorded) -> int:
    """Offer the sale's new deliveries for RQ; the status that answers it (200 a duplicate, else 201)."""
    logs.bind(sales_id=outcome.sales_id)  # on this request's access line
    hand_over(app, outcome.new_delivery_ids)
    return 200 if outcome.duplicate else 201


def _is_report(environ: Environ) -> bool | None:
    """Whether the fast path takes the request: a POST to the exact path, without cookies. Flask's answer
    to a request with a permanent session cookie re-signs it (Set-Cookie); API clients send none."""
    if (
        environ.get("REQUEST_METHOD") == "POST"
        and environ.get("PATH_INFO") == TRANSACTIONS_PATH
        and "HTTP_COOKIE" not in environ
    ):
        return True
    return None


def _answer_report(app: Flask, environ: Environ, _matched: object) -> Answer:
    outcome = _record_report(app, environ)
    code = _handed_over(app, outcome)
    status = f"{code} {HTTP_STATUS_CODES[code].upper()}"  # as werkzeug spells it: "201 CREATED"
    return Answer(status, "application/json", _json_text(app, outcome.as_json()).encode(), _VARY_COOKIE)


def _json_text(app: Flask, value: Any) -> str:
    """The text `jsonify(value)` sends: the app's JSON provider (sorted keys, ASCII), compact unless the app
    runs in debug mode."""
    compact = getattr(app.json, "compact", None)
    if (compact is None and app.debug) or compact is False:
        return app.json.dumps(value, indent=2) + "\n"
    return app.json.dumps(value, separators=(",", ":")) + "\n"


# Flask's answer carries it (the login manager reads the session on every request); so does this one, so
# that a cache treats both alike.
_VARY_COOKIE = (("Vary", "Cookie"),)


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not a number")


def _csv_stream() -> tuple[Any, bool]:
    """The upload to read, and whether it is ours to close (a copy) rather than the server's (the body)."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise FieldError("file", None, "is required (curl -F file=@sales.csv)")
        # Flask closes the request's files when the view returns, before the streamed answer is read.
        copy = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the response, after streaming
        shutil.copyfileobj(upload.stream, copy)
        copy.seek(0)
        return copy, True
    return request.stream, False


def _new_ids(line: LineOutcome) -> tuple[int, ...]:
    return () if isinstance(line.outcome, Rejected) else line.outcome.new_delivery_ids


def _count_key(line: LineOutcome) -> str:
    if isinstance(line.outcome, Rejected):
        return "rejected"
    if isinstance(line.outcome, Restated):
        return "changed"
    return "duplicates" if line.outcome.duplicate else "recorded"


@blueprint.errorhandler(TransactionNotFound)
def _not_found(exc: TransactionNotFound) -> ResponseReturnValue:
    return jsonify({"error": str(exc), "fields": {exc.field: exc.problem}}), 404


@blueprint.errorhandler(StatusConflict)
def _conflict(exc: StatusConflict) -> ResponseReturnValue:
    body = {"error": str(exc), "fields": {exc.field: exc.problem}, "current_status": exc.current_status}
    return jsonify(body), 409


serve_fast(blueprint, Route(_is_report, _answer_report))
