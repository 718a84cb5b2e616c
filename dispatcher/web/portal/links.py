"""Tracking links: the programs to promote and a link builder (traffic source, sub ids, where it lands)."""

from __future__ import annotations

from flask import render_template, request, url_for
from flask.typing import ResponseReturnValue

from dispatcher.db import request_session
from dispatcher.ledger.clicks import SUB_ID_NAMES
from dispatcher.portal import links, traffic_sources
from dispatcher.validation import FieldError
from dispatcher.web.portal.common import blueprint, publisher_id, publisher_required


def tracking_link(program_id: int, spec: links.LinkSpec, owner: int) -> str:
    """The absolute `/c/<program>` link, on the host this request came to."""
    return url_for("clicks.track", program_id=program_id, _external=True, **spec.query(owner))


@blueprint.get("/links")
@publisher_required
def tracking_links() -> ResponseReturnValue:
    session = request_session()
    programs = links.promotable(session)
    owned = traffic_sources.list_sources(session, publisher_id())
    active = [source for source in owned if source.active]
    status, error = 200, None
    try:
        spec = links.parse_spec(request.args, owned, programs)
    except FieldError as exc:
        spec = links.LinkSpec(traffic_source_id=links.default_source(owned))
        error, status = exc, 400
    chosen = next((program for program in programs if program.id == spec.program_id), None)
    # Without a traffic source no link works (the click refuses it): the page asks for one instead.
    can_link = spec.traffic_source_id is not None
    listed = links.LinkSpec(traffic_source_id=spec.traffic_source_id)
    page = render_template(
        "portal/links.html",
        programs=programs,
        sources=active,
        # Sources, none active: "add one first" would be untrue, the network deactivated them.
        all_deactivated=bool(owned) and not active,
        spec=spec,
        sub_ids=dict(spec.sub_ids),
        sub_id_names=SUB_ID_NAMES,
        chosen=chosen,
        built=tracking_link(chosen.id, spec, publisher_id()) if chosen and can_link else None,
        links={program.id: tracking_link(program.id, listed, publisher_id()) for program in programs}
        if can_link
        else {},
        error=error,
    )
    return page, status
