"""GET /c/<program_id>: the tracking link. Records the click; redirects to the advertiser's landing page."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, request
from flask.typing import ResponseReturnValue

from dispatcher.db import get_db
from dispatcher.ledger import ClickRequest, ProgramNotFound, record_click
from dispatcher.ledger.clicks import SUB_ID_NAMES

blueprint = Blueprint("clicks", __name__)


@blueprint.get("/c/<int:program_id>")
def track(program_id: int) -> ResponseReturnValue:
    # One pass over the query string: MultiDict.get raises and catches an exception for each absent name.
    args = request.args.to_dict()
    click = ClickRequest(
        program_id=program_id,
        publisher_id=args.get("pub"),
        traffic_source_id=args.get("ts"),
        sub_ids={name: args.get(name) for name in SUB_ID_NAMES},
        ip=request.remote_addr,
        user_agent=request.headers.get("User-Agent") or None,
    )
    # The database's hot-path connection, not the request's ORM session: a click needs none of it.
    with get_db(current_app).link() as link:
        try:
            landing_url = record_click(link, click)
        except ProgramNotFound:
            abort(404, description=f"There is no active program {program_id}.")
    response = redirect(landing_url, 302)
    # Every click must reach us: a cached redirect would skip recording it.
    response.headers["Cache-Control"] = "no-store"
    return response
