"""Administration of staff users (admin role): list and search, create with a role, deactivate and
reactivate, reset a password. An admin cannot deactivate their own account (nobody would be left to undo it
from the console)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from dispatcher import account_admin, account_edits, accounts
from dispatcher.db import request_session
from dispatcher.models import StaffRole, StaffUser
from dispatcher.support import audit
from dispatcher.validation import FieldError
from dispatcher.web.support import admin_common
from dispatcher.web.support.common import admin_required, blueprint, found, staff_id

LIST = "support/admin/staff.html"
NEW = "support/admin/staff_new.html"
DETAIL = "support/admin/staff_member.html"
ROLES = tuple(role.value for role in StaffRole)


@blueprint.get("/admin/staff")
@admin_required
def admin_staff() -> ResponseReturnValue:
    return admin_common.list_page(LIST, account_admin.list_staff)


@blueprint.get("/admin/staff/new")
@admin_required
def admin_staff_new() -> ResponseReturnValue:
    return render_template(NEW, form={"role": StaffRole.SUPPORT.value}, roles=ROLES, error=None)


@blueprint.post("/admin/staff")
@admin_required
def admin_staff_create() -> ResponseReturnValue:
    session = request_session()
    password, generated = admin_common.password_from(request.form)
    try:
        member = accounts.create_staff(
            session, request.form.get("email", ""), password, request.form.get("role", "")
        )
        account_edits.record_created(session, member, staff_id(), email=member.email, role=member.role)
    except FieldError as error:
        session.rollback()
        return render_template(NEW, form=request.form, roles=ROLES, error=error), 400
    session.commit()
    if generated:
        return _detail(member, secrets={"Password": password}, created=True)
    flash(f"Staff user {member.email} created ({member.role}).", "success")
    return redirect(url_for("support.admin_staff_member", member_id=member.id))


@blueprint.get("/admin/staff/<int:member_id>")
@admin_required
def admin_staff_member(member_id: int) -> ResponseReturnValue:
    return _detail(_member(member_id))


@blueprint.post("/admin/staff/<int:member_id>/active")
@admin_required
def admin_staff_active(member_id: int) -> ResponseReturnValue:
    session = request_session()
    member = _member(member_id)
    try:
        active = admin_common.active_choice(request.form)
        if not active and member.id == staff_id():
            raise FieldError("staff_id", member.id, "is your own account: another admin must deactivate it")
        change = account_admin.set_staff_active(session, member.id, active, by=staff_id())
    except FieldError as error:
        session.rollback()
        return _detail(member, error=error)
    session.commit()
    if not change.changed:
        flash("Nothing changed: it already was.", "info")
    else:
        flash("Reactivated." if change.active else "Deactivated; its sessions ended.", "success")
    return redirect(url_for("support.admin_staff_member", member_id=member.id))


@blueprint.post("/admin/staff/<int:member_id>/password")
@admin_required
def admin_staff_password(member_id: int) -> ResponseReturnValue:
    session = request_session()
    member = _member(member_id)
    password, generated = admin_common.password_from(request.form)
    try:
        account_admin.reset_password(session, "staff", member.id, password, by=staff_id())
    except FieldError as error:
        session.rollback()
        return _detail(member, error=error)
    session.commit()
    if generated:
        return _detail(member, secrets={"New password": password})
    flash("Password changed; every signed-in session of this staff user ended.", "success")
    return redirect(url_for("support.admin_staff_member", member_id=member.id))


def _member(member_id: int) -> StaffUser:
    return found(request_session().get(StaffUser, member_id))


def _detail(
    member: StaffUser,
    *,
    error: FieldError | None = None,
    secrets: dict[str, str] | None = None,
    **extra: Any,
) -> ResponseReturnValue:
    page = render_template(
        DETAIL,
        member=member,
        is_me=member.id == staff_id(),
        history=audit.entries_for(request_session(), "staff", member.id),
        error=error,
        secrets=secrets or {},
        **extra,
    )
    return page, 400 if error else 200
