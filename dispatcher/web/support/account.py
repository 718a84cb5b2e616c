"""The staff member's own API token (shown once, replaceable, revocable), time zone, and the audit log."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from dispatcher.db import request_session
from dispatcher.models import StaffUser
from dispatcher.staff_auth import issue_token, revoke_token
from dispatcher.support import audit
from dispatcher.support.params import row_id
from dispatcher.web import times
from dispatcher.web.support.common import blueprint, found, staff_id, staff_required


def _me() -> StaffUser:
    return found(request_session().get(StaffUser, staff_id()))


def _page(me: StaffUser, new_token: str | None = None, time_zone_error: str | None = None) -> str:
    return render_template(
        "support/account.html",
        me=me,
        new_token=new_token,
        time_zones=times.zone_names(),
        time_zone_error=time_zone_error,
    )


@blueprint.get("/account")
@staff_required
def account() -> ResponseReturnValue:
    return _page(_me())


@blueprint.post("/account/time-zone")
@staff_required
def set_time_zone() -> ResponseReturnValue:
    me = _me()
    return times.save_zone(me, lambda error: _page(me, time_zone_error=error), "support.account")


@blueprint.post("/account/token")
@staff_required
def new_token() -> ResponseReturnValue:
    session = request_session()
    me = _me()
    token = issue_token(me)
    audit.record(session, me.id, "issue_api_token", "staff_user", me.id, key_id=me.api_token_id)
    session.commit()
    # Rendered, not redirected: the secret must not travel through the (readable) session cookie.
    return _page(me, new_token=token)


@blueprint.post("/account/token/revoke")
@staff_required
def revoke() -> ResponseReturnValue:
    session = request_session()
    me = _me()
    audit.record(session, me.id, "revoke_api_token", "staff_user", me.id, key_id=me.api_token_id)
    revoke_token(me)
    session.commit()
    flash("API token revoked: scripts using it now get 401.", "info")
    return redirect(url_for("support.account"))


@blueprint.get("/audit")
@staff_required
def audit_log() -> ResponseReturnValue:
    rows = audit.recent(request_session(), row_id(request.args, "before"))
    next_before = rows[-1].entry.id if len(rows) == audit.PAGE_SIZE else None
    return render_template("support/audit.html", rows=rows, next_before=next_before)
