"""The publisher's account page: the personal API token (shown once, revocable) and the time zone."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from dispatcher.db import request_session
from dispatcher.models import Publisher
from dispatcher.portal import tokens
from dispatcher.web import times
from dispatcher.web.portal.common import blueprint, found, publisher_id, publisher_required


def _me() -> Publisher:
    return found(request_session().get(Publisher, publisher_id()))


def _page(me: Publisher, **extra: Any) -> str:
    return render_template(
        "portal/account.html",
        me=me,
        hint=tokens.token_hint(me),
        time_zones=times.zone_names(),
        **{"new_token": None, **extra},
    )


@blueprint.get("/account")
@publisher_required
def account() -> ResponseReturnValue:
    return _page(_me())


@blueprint.post("/account/time-zone")
@publisher_required
def set_time_zone() -> ResponseReturnValue:
    me = _me()
    return times.save_zone(me, lambda error: _page(me, time_zone_error=error), "portal.account")


@blueprint.post("/account/token")
@publisher_required
def new_token() -> ResponseReturnValue:
    session = request_session()
    me = _me()
    token = tokens.issue_token(me)
    session.commit()
    # Rendered, not redirected: the secret must not travel through the (readable) session cookie.
    return _page(me, new_token=token)


@blueprint.post("/account/token/revoke")
@publisher_required
def revoke_token() -> ResponseReturnValue:
    session = request_session()
    tokens.revoke_token(_me())
    session.commit()
    flash("API token revoked: scripts using it now get 401.", "info")
    return redirect(url_for("portal.account"))
