"""Administration of programs (admin role): list and search (by name, advertiser or id, and by advertiser),
create, edit the terms (name, landing URL, commission, currency, clickless and advertiser-reported
commission allowed), deactivate and reactivate. A new commission applies to transactions recorded from then
on; the page says so."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from dispatcher import account_admin, account_edits, accounts
from dispatcher.db import request_session
from dispatcher.models import Advertiser, Program
from dispatcher.support import audit, params
from dispatcher.validation import FieldError
from dispatcher.web.support import admin_common
from dispatcher.web.support.common import admin_required, blueprint, found, staff_id

LIST = "support/admin/programs.html"
NEW = "support/admin/program_new.html"
DETAIL = "support/admin/program.html"


@blueprint.get("/admin/programs")
@admin_required
def admin_programs() -> ResponseReturnValue:
    session = request_session()
    try:
        advertiser_id = params.row_id(request.args, "advertiser_id")
        rows = account_admin.list_programs(session, advertiser_id, admin_common.window(request.args))
    except FieldError as error:
        return render_template(LIST, rows=[], q="", next_args=None, advertiser_id="", error=error), 400
    listing = admin_common.paged(rows, request.args)
    if listing["next_args"] and advertiser_id:
        listing["next_args"]["advertiser_id"] = advertiser_id
    return render_template(LIST, error=None, advertiser_id=advertiser_id or "", **listing)


@blueprint.get("/admin/programs/new")
@admin_required
def admin_program_new() -> ResponseReturnValue:
    form = {"currency": "USD", "advertiser_id": request.args.get("advertiser_id", "")}
    return _new_page(form, None)


@blueprint.post("/admin/programs")
@admin_required
def admin_program_create() -> ResponseReturnValue:
    session = request_session()
    try:
        program = accounts.create_program(
            session, request.form.get("advertiser_id", ""), **_terms(request.form)
        )
        account_edits.record_created(session, program, staff_id(), advertiser_id=program.advertiser_id)
    except FieldError as error:
        session.rollback()
        return _new_page(request.form, error)
    session.commit()
    flash(f"Program “{program.name}” created (id {program.id}).", "success")
    return redirect(url_for("support.admin_program", program_id=program.id))


@blueprint.get("/admin/programs/<int:program_id>")
@admin_required
def admin_program(program_id: int) -> ResponseReturnValue:
    return _detail(_program(program_id))


@blueprint.post("/admin/programs/<int:program_id>")
@admin_required
def admin_program_edit(program_id: int) -> ResponseReturnValue:
    session = request_session()
    program = _program(program_id)
    try:
        changed = account_edits.edit_program(session, program.id, by=staff_id(), **_terms(request.form))
    except FieldError as error:
        session.rollback()
        return _detail(program, error=error, form=request.form)
    session.commit()
    flash(f"Saved: {', '.join(changed)}." if changed else "Nothing changed.", "success")
    return redirect(url_for("support.admin_program", program_id=program.id))


@blueprint.post("/admin/programs/<int:program_id>/active")
@admin_required
def admin_program_active(program_id: int) -> ResponseReturnValue:
    session = request_session()
    program = _program(program_id)
    try:
        change = account_admin.set_program_active(
            session, program.id, admin_common.active_choice(request.form), by=staff_id()
        )
    except FieldError as error:
        session.rollback()
        return _detail(program, error=error)
    session.commit()
    if not change.changed:
        flash("Nothing changed: it already was.", "info")
    else:
        flash("Reactivated." if change.active else "Deactivated: its links record no click.", "success")
    return redirect(url_for("support.admin_program", program_id=program.id))


def _terms(form: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": form.get("name", ""),
        "landing_url": form.get("landing_url", ""),
        "commission": form.get("commission", ""),
        "currency": form.get("currency", ""),
        "allow_clickless": admin_common.checkbox(form, "allow_clickless"),
        "allow_advertiser_commission": admin_common.checkbox(form, "allow_advertiser_commission"),
    }


def _program(program_id: int) -> Program:
    return found(request_session().get(Program, program_id))


def _advertisers() -> list[Advertiser]:
    return list(request_session().scalars(select(Advertiser).order_by(Advertiser.name, Advertiser.id)))


def _new_page(form: Mapping[str, str], error: FieldError | None) -> ResponseReturnValue:
    page = render_template(NEW, form=form, error=error, advertisers=_advertisers())
    return page, 400 if error else 200


def _detail(
    program: Program, *, error: FieldError | None = None, form: Mapping[str, str] | None = None
) -> ResponseReturnValue:
    session = request_session()
    page = render_template(
        DETAIL,
        program=program,
        advertiser=session.get(Advertiser, program.advertiser_id),
        commission=account_admin.commission_text(program),
        history=audit.entries_for(session, "program", program.id),
        error=error,
        form=form
        or {
            "name": program.name,
            "landing_url": program.landing_url,
            "commission": account_admin.commission_text(program),
            "currency": program.currency,
            "allow_clickless": "on" if program.allow_clickless else "",
            "allow_advertiser_commission": "on" if program.allow_advertiser_commission else "",
        },
    )
    return page, 400 if error else 200
