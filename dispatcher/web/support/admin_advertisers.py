"""Administration of advertisers (admin role): list and search, create, rename, deactivate and reactivate,
rotate the API key or the S2S token with a grace period (the new secret shown once)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from dispatcher import account_admin, account_edits, accounts
from dispatcher.db import request_session
from dispatcher.models import Advertiser
from dispatcher.support import audit
from dispatcher.validation import FieldError
from dispatcher.web.support import admin_common
from dispatcher.web.support.common import admin_required, blueprint, found, staff_id

LIST = "support/admin/advertisers.html"
NEW = "support/admin/advertiser_new.html"
DETAIL = "support/admin/advertiser.html"
# What the rotation form may name: the secret's label on the page, and its rotation.
ROTATIONS = {
    "api_key": ("New API key", account_admin.rotate_advertiser_key),
    "s2s_token": ("New S2S token", account_admin.rotate_advertiser_s2s_token),
}


@blueprint.get("/admin/advertisers")
@admin_required
def admin_advertisers() -> ResponseReturnValue:
    return admin_common.list_page(LIST, account_admin.list_advertisers)


@blueprint.get("/admin/advertisers/new")
@admin_required
def admin_advertiser_new() -> ResponseReturnValue:
    return render_template(NEW, form={}, error=None)


@blueprint.post("/admin/advertisers")
@admin_required
def admin_advertiser_create() -> ResponseReturnValue:
    session = request_session()
    try:
        created = accounts.create_advertiser(session, request.form.get("name", ""))
        account_edits.record_created(session, created.advertiser, staff_id())
    except FieldError as error:
        session.rollback()
        return render_template(NEW, form=request.form, error=error), 400
    session.commit()
    secrets = {"API key": created.api_key, "S2S token": created.s2s_token}
    return _detail(created.advertiser, secrets=secrets, created=True)


@blueprint.get("/admin/advertisers/<int:advertiser_id>")
@admin_required
def admin_advertiser(advertiser_id: int) -> ResponseReturnValue:
    return _detail(_advertiser(advertiser_id))


@blueprint.post("/admin/advertisers/<int:advertiser_id>")
@admin_required
def admin_advertiser_edit(advertiser_id: int) -> ResponseReturnValue:
    session = request_session()
    advertiser = _advertiser(advertiser_id)
    try:
        changed = account_edits.edit_advertiser(
            session, advertiser.id, name=request.form.get("name", ""), by=staff_id()
        )
    except FieldError as error:
        session.rollback()
        return _detail(advertiser, error=error, form=request.form)
    session.commit()
    flash(f"Saved: {', '.join(changed)}." if changed else "Nothing changed.", "success")
    return redirect(url_for("support.admin_advertiser", advertiser_id=advertiser.id))


@blueprint.post("/admin/advertisers/<int:advertiser_id>/active")
@admin_required
def admin_advertiser_active(advertiser_id: int) -> ResponseReturnValue:
    session = request_session()
    advertiser = _advertiser(advertiser_id)
    try:
        change = account_admin.set_advertiser_active(
            session, advertiser.id, admin_common.active_choice(request.form), by=staff_id()
        )
    except FieldError as error:
        session.rollback()
        return _detail(advertiser, error=error)
    session.commit()
    if not change.changed:
        flash("Nothing changed: it already was.", "info")
    else:
        flash(
            "Reactivated." if change.active else "Deactivated: its key and S2S token are refused.", "success"
        )
    return redirect(url_for("support.admin_advertiser", advertiser_id=advertiser.id))


@blueprint.post("/admin/advertisers/<int:advertiser_id>/rotate")
@admin_required
def admin_advertiser_rotate(advertiser_id: int) -> ResponseReturnValue:
    session = request_session()
    advertiser = _advertiser(advertiser_id)
    which = request.form.get("secret", "")
    try:
        if which not in ROTATIONS:
            raise FieldError("secret", which, f"must be one of {', '.join(ROTATIONS)}")
        label, rotate = ROTATIONS[which]
        rotated = rotate(session, advertiser.id, admin_common.grace_choice(request.form), by=staff_id())
    except FieldError as error:
        session.rollback()
        return _detail(advertiser, error=error)
    session.commit()
    return _detail(advertiser, secrets={label: rotated.secret}, old_valid_until=rotated.old_valid_until)


def _advertiser(advertiser_id: int) -> Advertiser:
    return found(request_session().get(Advertiser, advertiser_id))


def _detail(
    advertiser: Advertiser,
    *,
    error: FieldError | None = None,
    secrets: dict[str, str] | None = None,
    **extra: Any,
) -> ResponseReturnValue:
    session = request_session()
    page = render_template(
        DETAIL,
        advertiser=advertiser,
        programs=account_admin.list_programs(session, advertiser.id),
        history=audit.entries_for(session, "advertiser", advertiser.id),
        grace_choices=admin_common.GRACE_CHOICES,
        error=error,
        secrets=secrets or {},
        form=extra.pop("form", None) or {"name": advertiser.name},
        **extra,
    )
    return page, 400 if error else 200
