"""The advertiser API: report transactions (JSON), upload them (CSV), and change their status.

JSON numbers are parsed as Decimal, never float: 19.99 stays 19.99. Each view checks the credentials, hands
the values to the ledger, and, after the ledger has committed, hands the new deliveries to RQ.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request, stream_with_context
from flask.typing import ResponseReturnValue

from dispatcher.auth import require_advertiser_api_key
from dispatcher.db import get_db, request_session
from dispatcher.ledger import (
    Rejected,
    SaleReport,
    StatusChange,
    StatusConflict,
    TransactionNotFound,
    change_status,
    record_sales,
)
from dispatcher.ledger.csv_batch import CsvFile, LineOutcome, record_csv
from dispatcher.ledger.handoff import hand_over
from dispatcher.ledger.results import Recorded
from dispatcher.models import Channel
from dispatcher.validation import FieldError

blueprint = Blueprint("advertiser_api", __name__, url_prefix="/api/v1/transactions")

MAX_JSON_BYTES = 64 * 1024
MAX_CSV_BYTES = 64 * 1024 * 1024


@blueprint.post("")
def report() -> ResponseReturnValue:
    # The database's hot-path connection, not the request's ORM session (see dispatcher.db.Link).
    with get_db(current_app).link() as link:
        advertiser = require_advertiser_api_key(link)
        sale = SaleReport.from_mapping(json_body())
        outcome = record_sales(link, advertiser.id, [sale], Channel.API.value)[0]
    return recorded_response(outcome)


@blueprint.post("/<sales_id>/status")
def status(sales_id: str) -> ResponseReturnValue:
    session = request_session()
    advertiser = require_advertiser_api_key(session)
    body = json_body()
    unknown = sorted(set(body) - {"status", "sale_amount", "commission"})
    if unknown:
        raise FieldError(
            unknown[0], body[unknown[0]], "is not a field; known: status, sale_amount, commission"
        )
    changed = change_status(session, advertiser.id, sales_id, StatusChange(**body), Channel.API.value)
    hand_over(current_app, changed.new_delivery_ids)
    return jsonify(changed.as_json())


@blueprint.post("/batch")
def batch() -> ResponseReturnValue:
    session = request_session()
    advertiser = require_advertiser_api_key(session)
    if (request.content_length or 0) > MAX_CSV_BYTES:
        abort(413, description=f"file: must be at most {MAX_CSV_BYTES // (1024 * 1024)} MB")
    stream, owned = _csv_stream()
    upload = CsvFile(stream)
    results = record_csv(session, advertiser.id, upload, Channel.CSV.value)
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def body() -> Iterator[str]:
        counts = {"recorded": 0, "duplicates": 0, "rejected": 0}
        separator = ""
        yield '{"results": ['
        for chunk in results:
            hand_over(app, [i for line in chunk for i in _new_ids(line)])
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
    if (request.content_length or 0) > MAX_JSON_BYTES:
        abort(413, description=f"body: must be at most {MAX_JSON_BYTES} bytes")
    raw = request.get_data(cache=False)
    try:
        body = json.loads(raw, parse_float=Decimal, parse_constant=_no_constants)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise FieldError("body", raw[:64].decode("utf-8", "replace"), "must be a JSON object") from None
    if not isinstance(body, dict):
        raise FieldError("body", body, "must be a JSON object")
    return body


def recorded_response(outcome: Recorded | Rejected) -> ResponseReturnValue:
    if isinstance(outcome, Rejected):
        raise outcome.error
    hand_over(current_app, outcome.new_delivery_ids)
    return jsonify(outcome.as_json()), 200 if outcome.duplicate else 201


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
    return line.outcome.new_delivery_ids if isinstance(line.outcome, Recorded) else ()


def _count_key(line: LineOutcome) -> str:
    if isinstance(line.outcome, Rejected):
        return "rejected"
    return "duplicates" if line.outcome.duplicate else "recorded"


@blueprint.errorhandler(TransactionNotFound)
def _not_found(exc: TransactionNotFound) -> ResponseReturnValue:
    return jsonify(
        {"error": str(exc), "fields": {"sales_id": "is not a transaction of this advertiser"}}
    ), 404


@blueprint.errorhandler(StatusConflict)
def _conflict(exc: StatusConflict) -> ResponseReturnValue:
    body = {"error": str(exc), "fields": {exc.field: exc.problem}, "current_status": exc.current_status}
    return jsonify(body), 409
