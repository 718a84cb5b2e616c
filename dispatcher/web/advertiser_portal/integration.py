"""The integration page: per program the S2S URL, the pixel and the tracking-link format; rotating the API
key and the S2S token with a grace period, the new secret shown once."""

from __future__ import annotations

from typing import Any

from flask import render_template, request
from flask.typing import ResponseReturnValue

from dispatcher.advertiser import integration
from dispatcher.db import request_session
from dispatcher.models import Advertiser
from dispatcher.validation import FieldError
from dispatcher.web.advertiser_portal.common import advertiser_id, advertiser_required, blueprint, found

PAGE = "advertiser/integration.html"


def _page(status: int = 200, **extra: Any) -> ResponseReturnValue:
    session = request_session()
    me = found(session.get(Advertiser, advertiser_id()))
    token = extra.get("new_secrets", {}).get("s2s_token")
    base = request.host_url.rstrip("/")
    page = render_template(
        PAGE,
        advertiser=me,
        items=[integration.formats(base, program, token) for program in integration.programs(session, me.id)],
        grace_choices=integration.GRACE_CHOICES,
        previous_until=integration.previous_valid_until(me),
        **{"new_secrets": {}, "error": None, **extra},
    )
    return page, status


@blueprint.get("/integration")
@advertiser_required
def integration_page() -> ResponseReturnValue:
    return _page()


@blueprint.post("/integration/rotate")
@advertiser_required
def rotate_secret() -> ResponseReturnValue:
    session = request_session()
    secret = request.form.get("secret", "")
    try:
        rotated = integration.rotate(session, advertiser_id(), secret, request.form.get("grace", ""))
    except FieldError as error:
        session.rollback()
        return _page(400, error=error)
    session.commit()
    # Rendered, not redirected: the secret must not travel through the (readable) session cookie.
    return _page(new_secrets={secret: rotated.secret}, old_valid_until=rotated.old_valid_until)
