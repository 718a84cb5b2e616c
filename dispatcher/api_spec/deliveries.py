"""Delivery logs: a publisher's own (`pub_` token) or, with a staff `stf_` token, every publisher's."""

from __future__ import annotations

from dispatcher.api_spec.common import BLANK as NONE
from dispatcher.api_spec.common import ID_OR_BLANK as ID
from dispatcher.api_spec.common import JSON, UNAUTHORIZED_PUBLISHER, error, json_response, path_id, query
from dispatcher.api_spec.common import ref as schema
from dispatcher.models import DeliveryState, ErrorClass

TAG = "Deliveries"
EITHER: list[dict[str, list[str]]] = [{"publisherToken": []}, {"staffToken": []}]
DELIVERY_ID = path_id("delivery_id", "A delivery of yours (staff: anyone's); others answer 404", 90412)
NOT_FOUND = error("No such delivery (or not yours).", "delivery 90412 not found")
STATES = [state.value for state in DeliveryState]
TEXT = {"type": "string", "maxLength": 255}
DAY_OR_TIME = {
    "type": "string",
    "description": "A date (`to` includes the whole day); staff may also give an ISO 8601 time (UTC "
    "unless it "
    "says otherwise)",
}
PARAMETERS = [
    query("state", "Delivery state", {"type": "string", "enum": ["", *STATES]}, "failed"),
    query("postback_id", "Only this postback's", ID, 12),
    query("from", "Created on or after", DAY_OR_TIME, "2026-11-20"),
    query("to", "Created on or before", DAY_OR_TIME, "2026-11-21"),
    query("order_number", "The sale's order number", TEXT, "A-1001"),
    query("sub_id", "Publishers: any of the click's fobs..fobs5; staff: its fobs", TEXT, "their-click-id"),
    query("before", "Keyset cursor: the previous page's `next_before`", ID, 90412),
    *(
        query(name, f"Staff only: {description}", TEXT)
        for name, description in (
            ("sales_id", "the network's sales id"),
            ("click_id", "the network's click id"),
            ("destination_host", "the receiver's host name"),
        )
    ),
    *(
        query(name, f"Staff only: the {what}'s id", ID)
        for name, what in (
            ("publisher_id", "publisher"),
            ("program_id", "program"),
            ("advertiser_id", "advertiser"),
        )
    ),
    query(
        "error_class",
        "Staff only: the last error's class",
        {"type": "string", "enum": ["", *(e.value for e in ErrorClass)]},
    ),
    query(
        "status_code",
        "Staff only: the last HTTP status",
        {"anyOf": [{"type": "integer", "minimum": 100, "maximum": 599}, NONE]},
    ),
]
DELIVERY = {
    "id": 90412,
    "postback_id": 12,
    "transaction_event_id": 5531,
    "state": "succeeded",
    "attempt_count": 1,
    "next_attempt_at": None,
    "method": "GET",
    "url": "https://tracker.example/postback?cid=their-click-id&payout=24.99",
    "body": None,
    "last_status_code": 200,
    "last_error_class": None,
    "last_error": None,
    "created_at": "2026-11-20T14:30:01Z",
    "updated_at": "2026-11-20T14:30:02Z",
    "completed_at": "2026-11-20T14:30:02Z",
}
ROW = {
    **DELIVERY,
    "order_number": "A-1001",
    "sales_id": "k3Jd8xQp0aZw7LmN",
    "event": "sale",
    "sub_id": "their-click-id",
}
ATTEMPT = {
    "number": 1,
    "outcome": "succeeded",
    "started_at": "2026-11-20T14:30:01Z",
    "duration_ms": 84,
    "method": "GET",
    "url": DELIVERY["url"],
    "request_body": None,
    "resolved_ip": "203.0.113.7",
    "status_code": 200,
    "response_headers": {"Content-Type": "text/plain"},
    "response_excerpt": "OK",
    "error_class": None,
    "error_message": None,
}

LIST: JSON = {
    "get": {
        "tags": [TAG],
        "operationId": "listDeliveries",
        "summary": "Search deliveries, newest first, 50 per page",
        "description": "A publisher token sees its own deliveries; a staff token sees every "
        "publisher's and may use the staff-only filters. A parameter the token cannot filter by (a "
        "staff-only filter with a publisher token, a misspelt name) is a 400 naming it, never ignored.",
        "security": EITHER,
        "parameters": PARAMETERS,
        "responses": {
            "200": json_response(
                "One page", schema("DeliveryPage"), {"page": {"deliveries": [ROW], "next_before": None}}
            ),
            "400": error(
                "A filter is refused or unknown to this token, named in `fields`.",
                "state: must be one of pending, succeeded, failed, got 'done'",
                {"state": "must be one of pending, succeeded, failed"},
            ),
            "401": UNAUTHORIZED_PUBLISHER,
        },
    }
}
ONE: JSON = {
    "get": {
        "tags": [TAG],
        "operationId": "getDelivery",
        "summary": "One delivery with every attempt",
        "security": EITHER,
        "parameters": [DELIVERY_ID],
        "responses": {
            "200": json_response(
                "The delivery", schema("DeliveryDetail"), {"sent": {**DELIVERY, "attempts": [ATTEMPT]}}
            ),
            "401": UNAUTHORIZED_PUBLISHER,
            "404": NOT_FOUND,
        },
    }
}
REPLAY: JSON = {
    "post": {
        "tags": [TAG],
        "operationId": "replayDelivery",
        "summary": "Send a finished delivery again",
        "description": "Re-opens the delivery for the workers (staff replays are audited).",
        "security": EITHER,
        "parameters": [DELIVERY_ID],
        "responses": {
            "200": json_response(
                "Re-opened",
                schema("Replayed"),
                {
                    "replayed": {
                        "replayed": True,
                        "message": "Delivery 90412 will be sent again in a moment.",
                        "delivery": {**DELIVERY, "state": "pending", "completed_at": None},
                    }
                },
            ),
            "401": UNAUTHORIZED_PUBLISHER,
            "404": NOT_FOUND,
            "409": error(
                "The delivery is still pending: it will be sent without a replay.",
                "Not replayed: delivery 90412 is still pending: it will be sent without a replay.",
            ),
        },
    }
}

PATHS: dict[str, JSON] = {
    "/api/v1/deliveries": LIST,
    "/api/v1/deliveries/{delivery_id}": ONE,
    "/api/v1/deliveries/{delivery_id}/replay": REPLAY,
}
