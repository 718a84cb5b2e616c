"""Pause and resume a publisher's postback, with a reason kept in the audit log."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from dispatcher.db import request_session
from dispatcher.models import Postback, Publisher
from dispatcher.support import actions, audit
from dispatcher.validation import FieldError
from dispatcher.web.support.common import blueprint, found, staff_id, staff_required


def _postback(postback_id: int) -> Postback:
    return found(request_session().get(Postback, postback_id))


@blueprint.get("/postbacks/<int:postback_id>")
@staff_required
def postback_detail(postback_id: int) -> ResponseReturnValue:
    session = request_session()
    postback = _postback(postback_id)
    return render_template(
        "support/postback.html",
        postback=postback,
        publisher=session.get(Publisher, postback.publisher_id),
        history=audit.entries_for(session, "postback", postback_id),
        error=None,
    )


@blueprint.post("/postbacks/<int:postback_id>/pause")
@staff_required
def pause_postback(postback_id: int) -> ResponseReturnValue:
    return _change(postback_id, actions.pause_postback)


@blueprint.post("/postbacks/<int:postback_id>/resume")
@staff_required
def resume_postback(postback_id: int) -> ResponseReturnValue:
    return _change(postback_id, actions.resume_postback)


def _change(
    postback_id: int, action: Callable[[Session, int, Postback, str], actions.Outcome]
) -> ResponseReturnValue:
    session = request_session()
    postback = _postback(postback_id)
    try:
        outcome = action(session, staff_id(), postback, request.form.get("reason", ""))
    except FieldError as error:
        session.rollback()
        page = render_template(
            "support/postback.html",
            postback=postback,
            publisher=session.get(Publisher, postback.publisher_id),
            history=audit.entries_for(session, "postback", postback_id),
            error=error,
        )
        return page, 400
    flash(outcome.message, "success" if outcome.done else "error")
    return redirect(_back(postback_id))


def _back(postback_id: int) -> str:
    if request.form.get("back") == "dashboard":
        return url_for("support.dashboard")
    return url_for("support.postback_detail", postback_id=postback_id)
