"""Administration of publishers (admin role): list and search, create, edit name and email, deactivate and
reactivate, reset the password, rotate the API token, add, rename and deactivate traffic sources."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from dispatcher import account_admin, account_edits, accounts
from dispatcher.db import request_session
from dispatcher.models import Publisher
from dispatcher.portal import traffic_sources
from dispatcher.support import audit
from dispatcher.validation import FieldError
from dispatcher.web.support import admin_common
from dispatcher.web.support.common import admin_required, blueprint, found, staff_id

LIST = "support/admin/publishers.html"
NEW = "support/admin/publisher_new.html"
DETAIL = "support/admin/publisher.html"


@blueprint.get("/admin/publishers")
@admin_required
def admin_publishers() -> ResponseReturnValue:
    return admin_common.list_page(LIST, account_admin.list_publishers)


@blueprint.get("/admin/publishers/new")
@admin_required
def admin_publisher_new() -> ResponseReturnValue:
    return render_template(NEW, form={}, error=None)


@blueprint.post("/admin/publishers")
@admin_required
def admin_publisher_create() -> ResponseReturnValue:
    session = request_session()
    password, generated = admin_common.password_from(request.form)
    try:
        created = accounts.create_publisher(
            session, request.form.get("name", ""), request.form.get("email", ""), password
        )
        account_edits.record_created(session, created.publisher, staff_id(), email=created.publisher.email)
    except FieldError as error:
        session.rollback()
        return render_template(NEW, form=request.form, error=error), 400
    session.commit()
    # Rendered, not redirected: the secrets must not travel through the (readable) session cookie.
    secrets = {"API token": created.api_token, **({"Password": password} if generated else {})}
    return _detail(created.publisher, secrets=secrets, created=True)


@blueprint.get("/admin/publishers/<int:publisher_id>")
@admin_required
def admin_publisher(publisher_id: int) -> ResponseReturnValue:
    return _detail(_publisher(publisher_id))


@blueprint.post("/admin/publishers/<int:publisher_id>")
@admin_required
def admin_publisher_edit(publisher_id: int) -> ResponseReturnValue:
    session = request_session()
    publisher = _publisher(publisher_id)
    try:
        changed = account_edits.edit_publisher(
            session,
            publisher.id,
            name=request.form.get("name", ""),
            email=request.form.get("email", ""),
            by=staff_id(),
        )
    except FieldError as error:
        session.rollback()
        return _detail(publisher, error=error, form=request.form)
    session.commit()
    flash(f"Saved: {', '.join(changed)}." if changed else "Nothing changed.", "success")
    return redirect(url_for("support.admin_publisher", publisher_id=publisher.id))


@blueprint.post("/admin/publishers/<int:publisher_id>/active")
@admin_required
def admin_publisher_active(publisher_id: int) -> ResponseReturnValue:
    session = request_session()
    publisher = _publisher(publisher_id)
    try:
        change = account_admin.set_publisher_active(
            session, publisher.id, admin_common.active_choice(request.form), by=staff_id()
        )
    except FieldError as error:
        session.rollback()
        return _detail(publisher, error=error)
    session.commit()
    if not change.changed:
        flash("Nothing changed: it already was.", "info")
    elif change.active:
        flash(f"Reactivated; {change.postbacks} postback(s) its deactivation had paused resumed.", "success")
    else:
        flash(f"Deactivated; its sessions ended and {change.postbacks} live postback(s) paused.", "success")
    return redirect(url_for("support.admin_publisher", publisher_id=publisher.id))


@blueprint.post("/admin/publishers/<int:publisher_id>/password")
@admin_required
def admin_publisher_password(publisher_id: int) -> ResponseReturnValue:
    session = request_session()
    publisher = _publisher(publisher_id)
    password, generated = admin_common.password_from(request.form)
    try:
        account_admin.reset_password(session, "publisher", publisher.id, password, by=staff_id())
    except FieldError as error:
        session.rollback()
        return _detail(publisher, error=error)
    session.commit()
    if generated:
        return _detail(publisher, secrets={"New password": password})
    flash("Password changed; every signed-in session of the publisher ended.", "success")
    return redirect(url_for("support.admin_publisher", publisher_id=publisher.id))


@blueprint.post("/admin/publishers/<int:publisher_id>/token")
@admin_required
def admin_publisher_token(publisher_id: int) -> ResponseReturnValue:
    session = request_session()
    publisher = _publisher(publisher_id)
    rotated = account_admin.rotate_publisher_token(session, publisher.id, by=staff_id())
    session.commit()
    return _detail(publisher, secrets={"New API token": rotated.secret})


@blueprint.post("/admin/publishers/<int:publisher_id>/sources")
@admin_required
def admin_source_add(publisher_id: int) -> ResponseReturnValue:
    session = request_session()
    publisher = _publisher(publisher_id)
    try:
        source = account_edits.add_traffic_source(
            session, publisher.id, request.form.get("name", ""), by=staff_id()
        )
    except FieldError as error:
        session.rollback()
        return _detail(publisher, error=error, new_source=request.form.get("name", ""))
    session.commit()
    flash(f"Traffic source “{source.name}” added (id {source.id}).", "success")
    return redirect(url_for("support.admin_publisher", publisher_id=publisher.id))


@blueprint.post("/admin/publishers/<int:publisher_id>/sources/<int:source_id>")
@admin_required
def admin_source_rename(publisher_id: int, source_id: int) -> ResponseReturnValue:
    session = request_session()
    publisher = _publisher(publisher_id)
    if traffic_sources.get_source(session, publisher.id, source_id) is None:
        abort(404)  # another publisher's source answers like a missing one
    try:
        source = account_edits.rename_traffic_source(
            session, publisher.id, source_id, request.form.get("name", ""), by=staff_id()
        )
    except FieldError as error:
        session.rollback()
        return _detail(publisher, error=error)
    session.commit()
    flash(f"Traffic source {source.id} is now “{source.name}”.", "success")
    return redirect(url_for("support.admin_publisher", publisher_id=publisher.id))


@blueprint.post("/admin/publishers/<int:publisher_id>/sources/<int:source_id>/active")
@admin_required
def admin_source_active(publisher_id: int, source_id: int) -> ResponseReturnValue:
    session = request_session()
    publisher = _publisher(publisher_id)
    if traffic_sources.get_source(session, publisher.id, source_id) is None:
        abort(404)  # another publisher's source answers like a missing one
    try:
        active = admin_common.active_choice(request.form)
        changed = account_edits.set_traffic_source_active(
            session, publisher.id, source_id, active, by=staff_id()
        )
    except FieldError as error:
        session.rollback()
        return _detail(publisher, error=error)
    session.commit()
    if not changed:
        flash("Nothing changed: it already was.", "info")
    elif active:
        flash(f"Traffic source {source_id} reactivated: its clicks are recorded again.", "success")
    else:
        flash(f"Traffic source {source_id} deactivated: its new clicks are refused.", "success")
    return redirect(url_for("support.admin_publisher", publisher_id=publisher.id))


def _publisher(publisher_id: int) -> Publisher:
    return found(request_session().get(Publisher, publisher_id))


def _detail(
    publisher: Publisher,
    *,
    error: FieldError | None = None,
    secrets: dict[str, str] | None = None,
    **extra: Any,
) -> ResponseReturnValue:
    session = request_session()
    page = render_template(
        DETAIL,
        publisher=publisher,
        sources=traffic_sources.list_sources(session, publisher.id),
        history=audit.entries_for(session, "publisher", publisher.id),
        error=error,
        secrets=secrets or {},
        form=extra.pop("form", None) or {"name": publisher.name, "email": publisher.email},
        **extra,
    )
    return page, 400 if error else 200
