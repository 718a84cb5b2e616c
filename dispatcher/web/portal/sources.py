"""Traffic sources: list, add, rename."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from dispatcher.db import request_session
from dispatcher.portal import traffic_sources
from dispatcher.validation import FieldError
from dispatcher.web.portal.common import blueprint, found, publisher_id, publisher_required


def _page(error: FieldError | None = None, status: int = 200, **extra: object) -> ResponseReturnValue:
    sources = traffic_sources.list_sources(request_session(), publisher_id())
    return render_template("portal/sources.html", sources=sources, error=error, **extra), status


@blueprint.get("/sources")
@publisher_required
def sources() -> ResponseReturnValue:
    return _page()


@blueprint.post("/sources")
@publisher_required
def add_source() -> ResponseReturnValue:
    session = request_session()
    name = request.form.get("name", "")
    try:
        source = traffic_sources.add_source(session, publisher_id(), name)
    except FieldError as error:
        session.rollback()
        return _page(error, 400, new_name=name)
    session.commit()
    flash(f"Traffic source “{source.name}” added (id {source.id}).", "success")
    return redirect(url_for("portal.sources"))


@blueprint.post("/sources/<int:source_id>")
@publisher_required
def rename_source(source_id: int) -> ResponseReturnValue:
    session = request_session()
    source = found(traffic_sources.get_source(session, publisher_id(), source_id))
    name = request.form.get("name", "")
    try:
        traffic_sources.rename_source(session, source, name)
    except FieldError as error:
        session.rollback()
        return _page(error, 400, error_source_id=source_id)
    session.commit()
    flash(f"Renamed to “{source.name}”.", "success")
    return redirect(url_for("portal.sources"))
