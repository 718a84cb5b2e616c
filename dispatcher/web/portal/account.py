"""The publisher's account page: the personal API token (shown once, revocable)."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from dispatcher.db import request_session
from dispatcher.models import Publisher
from dispatcher.portal import tokens
from dispatcher.web.portal.common import blueprint, found, publisher_id, publisher_required


def _me() -> Publisher:
    return found(request_session().get(Publisher, publisher_id()))


@blueprint.get("/account")
@publisher_required
def account() -> ResponseReturnValue:
    me = _me()
    return render_template("portal/account.html", me=me, hint=tokens.token_hint(me), new_token=None)


@blueprint.post("/account/token")
@publisher_required
def new_token() -> ResponseReturnValue:
    session = request_session()
    me = _me()
    token = tokens.issue_token(me)
    session.commit()
    # Rendered, not redirected: the secret must not travel through the (readable) session cookie.
    return render_template("portal/account.html", me=me, hint=tokens.token_hint(me), new_token=token)


@blueprint.post("/account/token/revoke")
@publisher_required
def revoke_token() -> ResponseReturnValue:
    session = request_session()
    tokens.revoke_token(_me())
    session.commit()
    flash("API token revoked: scripts using it now get 401.", "info")
    return redirect(url_for("portal.account"))
