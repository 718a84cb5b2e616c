"""Demo routes, registered only with DEMO_MODE=1 (`make run`): a landing page and a postback receiver."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from dispatcher import demo
from dispatcher.db import request_session

blueprint = Blueprint("demo", __name__, url_prefix="/demo")

MAX_BODY_BYTES = 4096


@blueprint.get("/landing")
def landing() -> ResponseReturnValue:
    return render_template("demo/landing.html", clickid=request.args.get("clickid", ""))


@blueprint.route("/receiver", methods=["GET", "POST"])
def receiver() -> ResponseReturnValue:
    session = request_session()
    body = request.get_data(cache=False)[:MAX_BODY_BYTES].decode("utf-8", "replace") or None
    query = {key: request.args.getlist(key) for key in request.args}
    receipt_id = demo.record_receipt(session, request.method, request.path, query, body)
    session.commit()
    return jsonify({"ok": True, "receipt": receipt_id})


@blueprint.get("/receipts")
def receipts() -> ResponseReturnValue:
    rows = demo.recent_receipts(request_session())
    return render_template("demo/receipts.html", receipts=rows)
