"""My conversions: what the publisher earned, sale by sale, with totals and files for their tracker."""

from __future__ import annotations

from flask import current_app, render_template, request
from flask.typing import ResponseReturnValue

from dispatcher.db import get_db, request_session
from dispatcher.portal import conversion_exports, conversions, deliveries, programs, traffic_sources
from dispatcher.validation import FieldError
from dispatcher.web.portal.common import blueprint, publisher_id, publisher_required


@blueprint.get("/conversions")
@publisher_required
def conversions_list() -> ResponseReturnValue:
    session = request_session()
    status = 200
    error = None
    try:
        filters = conversions.parse_filters(request.args)
    except FieldError as exc:
        filters, error, status = conversions.Filters(), exc, 400
    rows = conversions.search(session, publisher_id(), filters, conversions.PAGE_SIZE + 1)
    more = len(rows) > conversions.PAGE_SIZE
    rows = rows[: conversions.PAGE_SIZE]
    page = render_template(
        "portal/conversions.html",
        rows=rows,
        totals=conversions.totals(session, publisher_id(), filters),
        filters=filters,
        args=request.args,
        error=error,
        next_args={**filters.as_args(), "before": str(rows[-1].id)} if more else None,
        statuses=conversions.STATUSES,
        sub_ids=conversions.SUB_IDS,
        programs=programs.listed(session),
        sources=traffic_sources.list_sources(session, publisher_id()),
        troubled=deliveries.troubled_postbacks(session, publisher_id()),
    )
    return page, status


@blueprint.get("/conversions/export")
@publisher_required
def conversions_export() -> ResponseReturnValue:
    filters = conversions.parse_filters(request.args)  # a bad value: the 400 page names it
    return conversion_exports.download(get_db(current_app), publisher_id(), filters, request.args)
