"""CSV upload: the batch API's format and per-line semantics, with progress shown as the file is recorded
and each line's result on the page and as a file."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, render_template, request, stream_template, stream_with_context
from flask.typing import ResponseReturnValue

from dispatcher.advertiser import uploads
from dispatcher.db import request_session
from dispatcher.ledger import Rejected
from dispatcher.ledger.csv_batch import CsvFile, record_csv
from dispatcher.ledger.handoff import hand_over
from dispatcher.models import Channel
from dispatcher.validation import FieldError
from dispatcher.web.advertiser_api import MAX_CSV_BYTES
from dispatcher.web.advertiser_portal.common import (
    advertiser_id,
    advertiser_required,
    blueprint,
    found,
    redis_client,
)

FORM = "advertiser/upload.html"


@blueprint.get("/upload")
@advertiser_required
def upload_form() -> ResponseReturnValue:
    return render_template(FORM, error=None)


@blueprint.post("/upload")
@advertiser_required
def upload() -> ResponseReturnValue:
    if (request.content_length or 0) > MAX_CSV_BYTES:
        error = FieldError(
            "file", f"{request.content_length} bytes", f"must be at most {MAX_CSV_BYTES // 2**20} MB"
        )
        return render_template(FORM, error=error), 413
    given = request.files.get("file")
    if given is None or not given.filename:
        return render_template(FORM, error=FieldError("file", None, "is required: choose a CSV file")), 400
    # Flask closes the request's files when the view returns, before the streamed page is read.
    copy = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the response, after streaming
    shutil.copyfileobj(given.stream, copy)
    copy.seek(0)
    try:
        csv_file = CsvFile(copy)
    except FieldError as error:
        copy.close()
        return render_template(FORM, error=error), 400
    upload_id = uploads.new_upload_id()
    chunks = _recorded(csv_file, upload_id)
    page = stream_template("advertiser/upload_results.html", chunks=chunks, upload_id=upload_id)
    response = Response(stream_with_context(page), mimetype="text/html")
    response.call_on_close(copy.close)
    return response


def _recorded(csv_file: CsvFile, upload_id: str) -> Iterator[dict[str, Any]]:
    """Each chunk recorded (committed), handed to RQ and kept for the download, as the page is written."""
    client, owner, done = redis_client(), advertiser_id(), 0
    counts = dict.fromkeys(("recorded", "changed", "duplicate", "rejected"), 0)
    for chunk in record_csv(request_session(), owner, csv_file, Channel.CSV.value):
        outcomes = [line.outcome for line in chunk]
        hand_over(
            current_app, [i for o in outcomes if not isinstance(o, Rejected) for i in o.new_delivery_ids]
        )
        results = [uploads.result_of(line) for line in chunk]
        uploads.keep(client, owner, upload_id, results)
        for result in results:
            counts[result.result] += 1
        done += len(results)
        yield {"results": results, "done": done, "counts": dict(counts)}


@blueprint.get("/uploads/<upload_id>.csv")
@advertiser_required
def upload_results(upload_id: str) -> ResponseReturnValue:
    client = redis_client()
    found(True if uploads.exists(client, advertiser_id(), upload_id) else None)
    lines = uploads.results_csv(client, advertiser_id(), upload_id)
    return Response(
        lines,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="upload-results-{upload_id}.csv"'},
    )
