"""Operations of publishers on their postbacks (`Authorization: Bearer pub_...`)."""

from __future__ import annotations

from dispatcher.api_spec.common import (
    BEYOND_BIGINT,
    JSON,
    UNAUTHORIZED_PUBLISHER,
    error,
    json_body,
    json_response,
    path_id,
    query,
)
from dispatcher.api_spec.common import ref as schema
from dispatcher.models.postbacks import POSTBACK_EVENTS

TAG = "Postbacks"
PUBLISHER: list[dict[str, list[str]]] = [{"publisherToken": []}]
POSTBACK_ID = path_id("postback_id", "One of your postbacks (another publisher's answers 404)", 12)
NOT_FOUND = error("No postback of yours has this id.", "postback 12 not found")
REFUSED = error(
    "A field is refused (each one named in `fields`), unknown, or the body is not a JSON object; "
    "nothing saved.",
    "url: 10.0.0.5 is a private address; postbacks only go to public addresses",
    {"url": "10.0.0.5 is a private address; postbacks only go to public addresses"},
)
DRAFT_REFUSED = error(
    "A field is unknown or refused as saving would refuse it (a wrong type included), each one named in "
    "`fields`, or the body is not a JSON object; the templates' lint errors are findings in a 200 instead.",
    "method: must be GET or POST, got 'PATCH'",
    {"method": "must be GET or POST, got 'PATCH'"},
)
# The linter's words, in the preview's example with an error.
_NO_CLICK_MACRO = (
    "No macro identifies the click, so your tracker cannot attribute the conversion: put your tracker's "
    "click ID in the tracking link's fobs parameter and send it back, e.g. cid=#fobs#."
)
_PLACEHOLDER = (
    "{clickid} is your tracker's placeholder, left from its postback URL and would arrive literally; here it "
    "is #fobs# (the click ID your tracker put in the tracking link's fobs parameter)."
)
VOLUUM = {
    "name": "Voluum",
    "url": "https://tracker.example/postback?cid=#fobs#&payout=#ca#&txid=#flx_salesid#",
    "events": ["sale", "adjusted"],
}
CLICKFLARE = {
    "url": "https://tracker.example/cf/cv?click_id=#fobs#&payout=#ca#&txid=#flx_salesid#&ct=#status#",
    "method": "GET",
    "traffic_source_ids": [],
    "program_ids": [7],
    "events": ["sale", "approved", "declined", "reversed"],
    "statuses": ["pending", "approved", "declined", "reversed"],
    "status_map": {"pending": "sale", "approved": "sale", "declined": "refund", "reversed": "refund"},
}
JSON_POST = {
    "url": "https://tracker.example/hooks/sale",
    "method": "POST",
    "body_template": '{"click": "#fobs#", "amount": #sa#, "order": "#on#"}',
    "content_type": "application/json",
    "headers": {"X-Token": "abc123"},
    "success_body_contains": "ok",
    "signing_secret": True,
}
SAVED = {
    "id": 12,
    "name": "Voluum",
    "url": VOLUUM["url"],
    "method": "GET",
    "traffic_source_ids": [],
    "program_ids": [],
    "events": ["sale", "adjusted"],
    "statuses": ["pending", "approved", "declined", "reversed"],
    "body_template": None,
    "content_type": None,
    "headers": {},
    "status_map": {},
    "success_body_contains": None,
    "active": True,
    "signing_secret": None,
    "status": "active",
    "paused_reason": None,
    "last_delivery": {"id": 90412, "state": "succeeded", "status_code": 200, "error_class": None,
                      "at": "2026-11-20T14:30:02Z"},
    "success_rate_24h": 1.0,
    "created_at": "2026-11-01T09:00:00Z",
    "updated_at": "2026-11-01T09:00:00Z",
}  # fmt: skip
LINKS_TO_ONE = {
    name: {"operationId": operation, "parameters": {"postback_id": "$response.body#/id"}}
    for name, operation in (
        ("GetPostback", "getPostback"),
        ("UpdatePostback", "updatePostback"),
        ("DeletePostback", "deletePostback"),
    )
}

COLLECTION: JSON = {
    "get": {
        "tags": [TAG],
        "operationId": "listPostbacks",
        "summary": "List your postbacks, with status and the last 24 h's success rate",
        "security": PUBLISHER,
        "responses": {
            "200": json_response("Your postbacks", schema("PostbackList"), {"one": {"postbacks": [SAVED]}}),
            "401": UNAUTHORIZED_PUBLISHER,
        },
    },
    "post": {
        "tags": [TAG],
        "operationId": "createPostback",
        "summary": "Register a postback",
        "description": "The same checks and messages as the portal's form: lint errors in a "
        "template, a literal "
        "private or loopback host (unless allowed by `POSTBACK_ALLOWED_NETWORKS`), forbidden headers, "
        "foreign traffic sources and unknown or stopped programs are refused, every problem named at once.",
        "security": PUBLISHER,
        "requestBody": json_body(
            schema("PostbackCreate"), {"Voluum": VOLUUM, "ClickFlare": CLICKFLARE, "JSON POST": JSON_POST}
        ),
        "responses": {
            "201": {
                **json_response("Saved", schema("Postback"), {"saved": SAVED}),
                "links": LINKS_TO_ONE,
            },
            "400": REFUSED,
            "401": UNAUTHORIZED_PUBLISHER,
        },
    },
}
ONE: JSON = {
    "parameters": [POSTBACK_ID],
    "get": {
        "tags": [TAG],
        "operationId": "getPostback",
        "summary": "One postback",
        "security": PUBLISHER,
        "responses": {
            "200": json_response("The postback", schema("Postback"), {"saved": SAVED}),
            "401": UNAUTHORIZED_PUBLISHER,
            "404": NOT_FOUND,
        },
    },
    "put": {
        "tags": [TAG],
        "operationId": "updatePostback",
        "summary": "Change a postback (only the fields sent)",
        "description": 'Fields left out keep their values. `"signing_secret": true` makes a new secret, '
        "`false` removes it.",
        "security": PUBLISHER,
        "requestBody": json_body(
            schema("PostbackUpdate"),
            {"pause": {"active": False}, "new status words": {"status_map": {"approved": "sale"}}},
        ),
        "responses": {
            "200": json_response("Saved", schema("Postback"), {"saved": SAVED}),
            "400": REFUSED,
            "401": UNAUTHORIZED_PUBLISHER,
            "404": NOT_FOUND,
            "405": BEYOND_BIGINT,
        },
    },
    "delete": {
        "tags": [TAG],
        "operationId": "deletePostback",
        "summary": "Delete a postback (its deliveries keep their history)",
        "security": PUBLISHER,
        "responses": {
            "204": {"description": "Deleted"},
            "401": UNAUTHORIZED_PUBLISHER,
            "404": NOT_FOUND,
            "405": BEYOND_BIGINT,
        },
    },
}
PREVIEW: JSON = {
    "post": {
        "tags": [TAG],
        "operationId": "previewPostback",
        "summary": "Expand and lint templates for a sample sale; nothing is saved",
        "security": PUBLISHER,
        "parameters": [
            query(
                "postback",
                "The postback this draft edits, if any: a stopped program in its scope is then accepted, as "
                "saving the edit keeps it (without it, the draft is a new postback and stopped programs are "
                "refused). Another publisher's or an unknown id is a 404.",
                {"type": "string", "pattern": "^[0-9]{1,19}$"},
                "12",
            ),
            query(
                "status",
                "The sample sale's status (default approved), sent in the postback's status words",
                {"type": "string", "enum": ["", "pending", "approved", "declined", "reversed"]},
                "reversed",
            ),
        ],
        "requestBody": json_body(
            schema("PostbackPreview"),
            {"Voluum": VOLUUM, "foreign placeholder": {"url": "https://t.example/pb?cid={clickid}&p=#ca#"}},
            description="The postback's fields (none required); `url` may be left out. Each field sent is "
            "checked as on saving; the templates' lint errors, private hosts, bad ports and spaces in the "
            "URL are findings in the 200 (`ok` is true exactly when saving would take the URL).",
        ),
        "responses": {
            "200": json_response(
                "The expanded request and the linter's findings",
                schema("Preview"),
                {
                    "expanded": {
                        "method": "GET",
                        "url": "https://tracker.example/postback?cid=cl1ck-4f2a&payout=12.50&txid=k3Fz9QbX2LmN0pRs",
                        "body": None,
                        "content_type": None,
                        "ok": True,
                        "findings": [],
                        "url_marked": None,
                        "body_marked": None,
                    },
                    "with an error": {
                        "method": "GET",
                        "url": None,
                        "body": None,
                        "content_type": None,
                        "ok": False,
                        "findings": [
                            {
                                "field": "url",
                                "severity": "warning",
                                "code": "no_click_macro",
                                "message": _NO_CLICK_MACRO,
                                "start": 0,
                                "end": 41,
                            },
                            {
                                "field": "url",
                                "severity": "error",
                                "code": "foreign_syntax",
                                "message": _PLACEHOLDER,
                                "start": 25,
                                "end": 34,
                            },
                        ],
                        "url_marked": [
                            {"text": "https://t.example/pb?cid=", "problem": None},
                            {
                                "text": "{clickid}",
                                "problem": _PLACEHOLDER,
                            },
                            {"text": "&p=12.50", "problem": None},
                        ],
                        "body_marked": None,
                    },
                },
            ),
            "400": DRAFT_REFUSED,
            "401": UNAUTHORIZED_PUBLISHER,
            "404": NOT_FOUND,
        },
    }
}
TEST_VALUES: JSON = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "click_id": {"type": "string", "maxLength": 255, "description": "Sent as `#fobs#`"},
        "order_number": {"type": "string", "maxLength": 255},
        "amount": {"type": ["string", "number"], "description": "The sale amount (`#sa#`)"},
        "commission": {"type": ["string", "number"], "description": "`#ca#`"},
        "event": {
            "type": "string",
            "enum": list(POSTBACK_EVENTS),
            "description": "`#event#`: what fired it, the first report (sale, lead) or a later change",
        },
        "status": {"type": "string", "enum": ["pending", "approved", "declined", "reversed"]},
    },
}
TEST: JSON = {
    "post": {
        "tags": [TAG],
        "operationId": "testPostback",
        "summary": "Send the sample sale, or your own values, to the postback now",
        "description": "Through the workers' SSRF-guarded egress client; nothing is recorded. A refused or "
        "failing destination is a 200 with `ok: false` and the reason. The optional body replaces sample "
        "values: a real click id (`#fobs#`), order number, amounts, event and status (sent in the postback's "
        "status words).",
        "security": PUBLISHER,
        "parameters": [POSTBACK_ID],
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": TEST_VALUES, "examples": {"real": {"value": {
                "click_id": "their-click-id", "order_number": "A-1001", "amount": "249.90",
                "status": "approved"}}}}},
        },
        "responses": {
            "200": json_response(
                "What was sent and what came back",
                schema("TestResult"),
                {
                    "answered": {
                        "ok": True,
                        "request": {"method": "GET", "url": "https://tracker.example/postback?cid=cl1ck-4f2a",
                                    "body": None},
                        "status_code": 200,
                        "reason": "OK",
                        "duration_ms": 84,
                        "resolved_ip": "203.0.113.7",
                        "response_excerpt": "OK",
                        "error_class": None,
                        "error": None,
                    }
                },
            ),
            "400": error(
                "A test value is refused, named in `fields`.",
                "amount: must have at most 2 decimals for USD, got '12.345'",
                {"amount": "must have at most 2 decimals for USD"},
            ),
            "401": UNAUTHORIZED_PUBLISHER,
            "404": NOT_FOUND,
        },
    }
}  # fmt: skip

PATHS: dict[str, JSON] = {
    "/api/v1/postbacks": COLLECTION,
    "/api/v1/postbacks/{postback_id}": ONE,
    "/api/v1/postbacks/preview": PREVIEW,
    "/api/v1/postbacks/{postback_id}/test": TEST,
}
