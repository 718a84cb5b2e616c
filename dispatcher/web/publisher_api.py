"""The publisher API (`/api/v1/postbacks`, `/deliveries`, `/conversions`): the portal's powers for scripts.

Bearer-token authenticated (no cookies, so no CSRF); the same checks and messages as the portal's forms.
Another publisher's ids answer 404, exactly like missing ones.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from dispatcher import delivery_details, postback_rules
from dispatcher.broker import get_broker
from dispatcher.config import Settings
from dispatcher.db import get_db, request_session
from dispatcher.models import Postback
from dispatcher.models.types import MAX_ID
from dispatcher.portal import (
    conversion_exports,
    conversions,
    deliveries,
    links,
    postbacks,
    programs,
    replays,
    shapes,
    test_send,
    traffic_sources,
)
from dispatcher.portal.preview import preview, preview_status
from dispatcher.postback_rules import Invalid
from dispatcher.publisher_auth import current_publisher_id, token_required
from dispatcher.staff_auth import staff_alternative
from dispatcher.validation import only_known
from dispatcher.web import advertiser_api, support_api
from dispatcher.web.portal.links import tracking_link

blueprint = Blueprint("publisher_api", __name__, url_prefix="/api/v1")

FIELDS = (
    "name",
    "url",
    "method",
    "traffic_source_ids",
    "program_ids",
    "events",
    "statuses",
    "body_template",
    "content_type",
    "headers",
    "status_map",
    "success_body_contains",
    "active",
)
# Not a template field: true makes a new signing secret (rotating any old one), false removes it.
SIGNING = "signing_secret"


CONVERSION_PARAMETERS = (
    "program_id",
    "traffic_source_id",
    "status",
    "from",
    "to",
    "sub_id",
    "before",
    "format",
    "click_id",
)
PROGRAM_PARAMETERS = ("program_id", "traffic_source_id", "fobs", "fobs2", "fobs3", "fobs4", "fobs5")


def _settings() -> Settings:
    found: Settings = current_app.extensions["dispatcher.settings"]
    return found


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Invalid({"body": "must be a JSON object, sent with Content-Type: application/json"})
    unknown = {key: "is not a postback field" for key in data if key not in (*FIELDS, SIGNING)}
    if unknown:
        raise Invalid(unknown)
    signing = data.get(SIGNING)
    if SIGNING in data and not isinstance(signing, bool):
        raise Invalid({SIGNING: f"must be true (make a new secret) or false (remove it), got {signing!r}"})
    return data


def _own(postback_id: int) -> Postback:
    postback = postbacks.get_postback(request_session(), current_publisher_id(), postback_id)
    if postback is None:
        abort(404, description=f"postback {postback_id} not found")
    return postback


def _postback_param(value: str | None) -> int:
    digits = (value or "").strip()
    # Within BIGINT too: 19 digits reach past it, and the database refuses to compare such a number (a 500).
    if not (digits.isascii() and digits.isdigit() and len(digits) <= postback_rules.MAX_ID_DIGITS) or (
        int(digits) > MAX_ID
    ):
        raise Invalid({"postback": f"must be the id of one of your postbacks, got {value!r}"})
    return int(digits)


def _checked(values: dict[str, Any], postback: Postback | None = None) -> postback_rules.PostbackSpec:
    session = request_session()
    scoped = postbacks.spec_of(postback).program_ids if postback is not None else ()
    return postback_rules.check(
        values,
        own_source_ids=postbacks.own_source_ids(session, current_publisher_id()),
        programs=programs.choosable(session, scoped),
        allowed_networks=_settings().allowed_networks,
    )


def _one(postback: Postback) -> dict[str, Any]:
    health = postbacks.health(request_session(), [postback.id])[postback.id]
    return shapes.postback_json(postback, health)


@blueprint.errorhandler(Invalid)
def _invalid(invalid: Invalid) -> ResponseReturnValue:
    return jsonify(invalid.as_json()), 400


@blueprint.get("/postbacks")
@token_required
def list_postbacks() -> ResponseReturnValue:
    session = request_session()
    rows = postbacks.list_postbacks(session, current_publisher_id())
    states = postbacks.health(session, [row.id for row in rows])
    return jsonify({"postbacks": [shapes.postback_json(row, states[row.id]) for row in rows]})


@blueprint.post("/postbacks")
@token_required
def create_postback() -> ResponseReturnValue:
    session = request_session()
    data = _body()
    spec = _checked({key: value for key, value in data.items() if key != SIGNING})
    postback = postbacks.create_postback(session, current_publisher_id(), spec)
    if data.get(SIGNING):
        postbacks.set_signing(postback, True)
    session.commit()
    return jsonify(_one(postback)), 201


@blueprint.get("/postbacks/<int:postback_id>")
@token_required
def get_postback(postback_id: int) -> ResponseReturnValue:
    return jsonify(_one(_own(postback_id)))


@blueprint.put("/postbacks/<int:postback_id>")
@token_required
def update_postback(postback_id: int) -> ResponseReturnValue:
    """Fields left out keep their values, so a script can send only what it changes."""
    session = request_session()
    postback = _own(postback_id)
    data = _body()
    changes = {key: value for key, value in data.items() if key != SIGNING}
    spec = _checked({**postbacks.spec_of(postback).as_values(), **changes}, postback)
    postbacks.update_postback(session, postback, spec)
    if SIGNING in data:
        postbacks.set_signing(postback, bool(data[SIGNING]))
    session.commit()
    return jsonify(_one(postback))


@blueprint.delete("/postbacks/<int:postback_id>")
@token_required
def delete_postback(postback_id: int) -> ResponseReturnValue:
    session = request_session()
    postbacks.delete_postback(_own(postback_id))
    session.commit()
    return "", 204


@blueprint.post("/postbacks/preview")
@token_required
def preview_postback() -> ResponseReturnValue:
    """Each field is checked as on saving (nothing else required); the templates' problems are findings,
    and a missing URL is one (not ok, as saving would refuse it)."""
    session = request_session()
    # `?postback=<id>`: the draft edits that postback, whose stopped programs saving keeps; else it is new. A
    # misspelt parameter would quietly preview a new postback instead: refused.
    unknown = {name: "is not a parameter of the preview; known: postback, status" for name in request.args}
    unknown.pop("postback", None)
    unknown.pop("status", None)
    if unknown:
        raise Invalid(unknown)
    edited = _own(_postback_param(request.args.get("postback"))) if "postback" in request.args else None
    draft = postback_rules.check_preview(
        {key: value for key, value in _body().items() if key != SIGNING},
        own_source_ids=postbacks.own_source_ids(session, current_publisher_id()),
        programs=programs.choosable(session, postbacks.spec_of(edited).program_ids if edited else ()),
    )
    status = preview_status(request.args.get("status"))
    return jsonify(preview(draft, _settings().allowed_networks, status).as_json())


@blueprint.post("/postbacks/<int:postback_id>/test")
@token_required
def test_postback(postback_id: int) -> ResponseReturnValue:
    """The sample sale, or the values the optional JSON body gives (click_id, order_number, amount,
    commission, event, status)."""
    postback = _own(postback_id)
    # Read as the advertiser API reads a sale: numbers as Decimal (19.99 is not a float here).
    has_body = bool(request.content_length or request.headers.get("Transfer-Encoding"))
    chosen = test_send.values_given(advertiser_api.json_body() if has_body else {})
    return jsonify(test_send.send_test(postback, _settings().allowed_networks, given=chosen).as_json())


@blueprint.get("/deliveries")
@staff_alternative(support_api.list_deliveries)  # a staff token sees every publisher's
@token_required
def list_deliveries() -> ResponseReturnValue:
    # Never ignored: a staff script's `sales_id` run with a publisher token would get every delivery.
    only_known(request.args, deliveries.FILTER_PARAMETERS, "filter of a publisher's deliveries")
    filters = deliveries.parse_filters(request.args)
    rows = deliveries.search(request_session(), current_publisher_id(), filters, deliveries.PAGE_SIZE + 1)
    more = len(rows) > deliveries.PAGE_SIZE
    rows = rows[: deliveries.PAGE_SIZE]
    sent = delivery_details.last_requests(request_session(), (row.delivery.id for row in rows))
    return jsonify(
        {
            "deliveries": [shapes.log_row_json(row, sent.get(row.delivery.id)) for row in rows],
            "next_before": rows[-1].delivery.id if more else None,
        }
    )


@blueprint.get("/programs")
@token_required
def list_programs() -> ResponseReturnValue:
    """The programs the publisher may promote, each with its tracking link (for `traffic_source_id` and
    `fobs`..`fobs5` if given) and where a visitor lands."""
    only_known(request.args, PROGRAM_PARAMETERS)
    session = request_session()
    programs = links.promotable(session)
    sources = traffic_sources.list_sources(session, current_publisher_id())
    spec = links.parse_spec(request.args, sources, programs)
    shown = [program for program in programs if spec.program_id in (None, program.id)]
    return jsonify(
        {
            "programs": [
                {
                    "id": program.id,
                    "name": program.name,
                    "advertiser": program.advertiser,
                    "commission": program.commission,
                    "currency": program.currency,
                    "landing_url": program.landing_url,
                    # None without an active traffic source: a click without one is refused.
                    "tracking_link": tracking_link(program.id, spec, current_publisher_id())
                    if spec.traffic_source_id is not None
                    else None,
                    "lands_on": program.lands_on,
                }
                for program in shown
            ]
        }
    )


@blueprint.get("/conversions")
@token_required
def list_conversions() -> ResponseReturnValue:
    """The publisher's conversions with totals (JSON, keyset-paged), or every one as a file (`format`)."""
    session = request_session()
    only_known(request.args, CONVERSION_PARAMETERS)
    filters = conversions.parse_filters(request.args)
    conversion_exports.click_id_field(request.args)  # checked whatever the format: a bad one is never ignored
    if conversion_exports.export_format(request.args) != "json":
        return conversion_exports.download(get_db(current_app), current_publisher_id(), filters, request.args)
    rows = conversions.search(session, current_publisher_id(), filters, conversions.PAGE_SIZE + 1)
    more = len(rows) > conversions.PAGE_SIZE
    rows = rows[: conversions.PAGE_SIZE]
    return jsonify(
        {
            "conversions": [conversions.as_json(row) for row in rows],
            "next_before": rows[-1].id if more else None,
            "totals": conversions.totals(session, current_publisher_id(), filters).as_json(),
        }
    )


@blueprint.get("/deliveries/<int:delivery_id>")
@staff_alternative(support_api.get_delivery)  # a staff token sees every publisher's
@token_required
def get_delivery(delivery_id: int) -> ResponseReturnValue:
    delivery = deliveries.get_delivery(request_session(), current_publisher_id(), delivery_id)
    if delivery is None:
        abort(404, description=f"delivery {delivery_id} not found")
    body = delivery_details.delivery_json(delivery, delivery_details.last_request(delivery))
    body["attempts"] = [delivery_details.attempt_json(attempt) for attempt in delivery.attempts]
    return jsonify(body)


@blueprint.post("/deliveries/<int:delivery_id>/replay")
@staff_alternative(support_api.replay_delivery)  # a staff token sees every publisher's
@token_required
def replay_delivery(delivery_id: int) -> ResponseReturnValue:
    session = request_session()
    delivery = deliveries.get_delivery(session, current_publisher_id(), delivery_id)
    if delivery is None:
        abort(404, description=f"delivery {delivery_id} not found")
    outcome = replays.replay(session, get_broker(current_app).client(), delivery)
    if not outcome.replayed:
        return jsonify({"error": outcome.message, "fields": {}}), 409
    return jsonify(
        {
            "replayed": True,
            "message": outcome.message,
            "delivery": delivery_details.delivery_json(delivery, delivery_details.last_request(delivery)),
        }
    )
