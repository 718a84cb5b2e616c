"""GET /c/<program_id>: the tracking link. Records the click; redirects to the advertiser's landing page."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, request
from flask.typing import ResponseReturnValue

from dispatcher.db import request_session
from dispatcher.ledger import ClickRequest, ProgramNotFound, record_click
from dispatcher.ledger.clicks import SUB_ID_NAMES

blueprint = Blueprint("clicks", __name__)


@blueprint.get("/c/<int:program_id>")
def track(program_id: int) -> ResponseReturnValue:
    click = ClickRequest(
        program_id=program_id,
        publisher_id=request.args.get("pub"),
        traffic_source_id=request.args.get("ts"),
        sub_ids={name: request.args.get(name) for name in SUB_ID_NAMES},
        ip=request.remote_addr,
        user_agent=request.user_agent.string or None,
    )
    try:
        landing_url = record_click(request_session(), click)
    except ProgramNotFound:
        abort(404, description=f"There is no active program {program_id}.")
    response = redirect(landing_url, 302)
    # Every click must reach us: a cached redirect would skip recording it.
    response.headers["Cache-Control"] = "no-store"
    return response
