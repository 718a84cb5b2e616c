"""The JSON shapes of the API (`components.schemas`), as the code writes and reads them.

Sources: `dispatcher.ledger.results` and `.status` (sales), `dispatcher.postback_rules` and
`dispatcher.portal.shapes`, `.preview` and `.test_send` (postbacks), `dispatcher.delivery_details` (deliveries
and attempts), `dispatcher.web.support_api` (the staff's extra fields).
"""

from __future__ import annotations

from dispatcher.api_spec.common import JSON, nullable, ref
from dispatcher.ledger.reports import (
    CLICK_ID_LENGTH,
    EVENTS,
    INITIAL_STATUSES,
    ORDER_NUMBER_LENGTH,
    SUB_ID_NAMES,
    USER_AGENT_LENGTH,
)
from dispatcher.ledger.status import TARGETS
from dispatcher.models import AttemptOutcome, DeliveryState, ErrorClass, EventKind, TransactionStatus
from dispatcher.models.ledger import SUB_ID_LENGTH
from dispatcher.models.postbacks import POSTBACK_EVENTS
from dispatcher.postback_rules import CONTENT_TYPES, MAX_BODY, MAX_HEADERS, METHODS

STATUSES = [status.value for status in TransactionStatus]
TIME = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC (`Z`)"}
MONEY_OUT = {
    "type": "string",
    "pattern": r"^[0-9]+(\.[0-9]+)?$",
    "description": "Decimal in the currency's minor units, as text",
}
MONEY_IN = {
    "type": ["string", "number"],
    "description": 'A decimal as text (`"249.90"`) or a JSON number (parsed as a decimal, never a float)',
}
ID = {"type": "integer", "minimum": 1}
ID_IN = {
    "description": "A positive whole number, or the same as text",
    "type": ["integer", "string"],
}


def _object(properties: JSON, required: list[str] | None = None, *, closed: bool = True) -> JSON:
    schema: JSON = {"type": "object", "properties": properties, "required": required or []}
    if closed:
        schema["additionalProperties"] = False
    return schema


IGNORED = {
    "type": "array",
    "items": {"type": "string"},
    "description": "S2S only, when there are any: the URL's parameters nothing read (neither our names nor "
    "Integr8's), so a misspelt one is seen",
}
ERROR = _object(
    {
        "error": {"type": "string", "description": "What is wrong, naming the field and the value"},
        "fields": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Each refused field (as the caller named it) and its problem; `{}` when none",
        },
        "ignored": IGNORED,
    },
    ["error", "fields"],
)
STATUS_CONFLICT = _object(
    {
        **ERROR["properties"],
        "current_status": {"type": "string", "enum": STATUSES},
    },
    ["error", "fields", "current_status"],
)

SALE_REPORT = _object(
    {
        "click_id": nullable({"type": "string", "maxLength": CLICK_ID_LENGTH}),
        "order_number": {
            "type": ["string", "integer"],
            "description": f"Your order id, at most {ORDER_NUMBER_LENGTH} characters; a number is "
            "taken as text",
        },
        "sale_amount": MONEY_IN,
        "currency": nullable({"type": "string", "description": "ISO 4217; default: the program's"}),
        "event": nullable({"type": "string", "enum": list(EVENTS), "default": "sale"}),
        "status": nullable({"type": "string", "enum": list(INITIAL_STATUSES), "default": "pending"}),
        "event_time": nullable(
            {
                "type": ["string", "integer"],
                "description": "ISO 8601 (no offset: UTC) or Unix seconds; default now; at most 5 minutes "
                "ahead and not before the click",
            }
        ),
        "commission": nullable(
            {**MONEY_IN, "description": "Only where the program accepts the advertiser's"}
        ),
        "publisher_id": nullable({**ID_IN, "description": "Clickless sales only: who gets the credit"}),
        "traffic_source_id": nullable({**ID_IN, "description": "Clickless sales only"}),
        "program_id": nullable({**ID_IN, "description": "Clickless sales only"}),
        **{
            name: nullable(
                {
                    "type": "string",
                    "maxLength": SUB_ID_LENGTH,
                    "description": f"Clickless sales only: the publisher's sub id `#{name}#` (a "
                    "click carries its own)",
                }
            )
            for name in SUB_ID_NAMES
        },
        "ip": nullable({"type": "string", "description": "Clickless sales only: the visitor's IP address"}),
        "user_agent": nullable(
            {"type": "string", "maxLength": USER_AGENT_LENGTH, "description": "Clickless sales only"}
        ),
    },
    ["order_number", "sale_amount"],
)
SALE_RECORDED = _object(
    {
        "sales_id": {"type": "string", "description": "The network's sales id (`#flx_salesid#`)"},
        "status": {"type": "string", "enum": list(INITIAL_STATUSES)},
        "commission": MONEY_OUT,
        "currency": {"type": "string"},
        "deliveries": {"type": "integer", "minimum": 0, "description": "Postback deliveries created"},
        "duplicate": {"type": "boolean", "const": True, "description": "Only on a repeated report (200)"},
        "ignored": IGNORED,
    },
    ["sales_id", "status", "commission", "currency", "deliveries"],
)
STATUS_CHANGE = _object(
    {
        "status": nullable({"type": "string", "enum": list(TARGETS)}),
        "sale_amount": nullable({**MONEY_IN, "description": "Adjusts a pending or approved transaction"}),
        "commission": nullable(
            {**MONEY_IN, "description": "Only where the program accepts the advertiser's"}
        ),
    }
)
STATUS_CHANGED = _object(
    {
        "sales_id": {"type": "string"},
        "event": {"type": "string", "enum": [*TARGETS, "adjusted"]},
        "status": {"type": "string", "enum": STATUSES},
        "sale_amount": MONEY_OUT,
        "commission": MONEY_OUT,
        "currency": {"type": "string"},
        "deliveries": {"type": "integer", "minimum": 0},
    },
    ["sales_id", "event", "status", "sale_amount", "commission", "currency", "deliveries"],
)
SALE_CHANGED = {
    **_object(
        {
            **STATUS_CHANGED["properties"],
            "changed": {"type": "boolean", "const": True},
            "ignored": IGNORED,
        },
        [*STATUS_CHANGED["required"], "changed"],
    ),
    "description": "A repeated S2S or CSV report that changed the recorded order's status or amount: the "
    "status route's answer, `deliveries` counting the change's postbacks",
}
STATUS_BY_ORDER = _object(
    {
        "order_number": {
            "type": ["string", "integer"],
            "description": "Your order id, as reported; a number is taken as text",
        },
        "event": nullable({"type": "string", "enum": list(EVENTS), "default": "sale"}),
        "program_id": nullable(
            {**ID_IN, "description": "Needed only when the order number is in several of your programs"}
        ),
        **STATUS_CHANGE["properties"],
    },
    ["order_number"],
)
CSV_LINE = {
    "type": "object",
    "required": ["line"],
    "properties": {
        "line": {"type": "integer", "minimum": 1, "description": "The file's own line number (header = 1)"},
        **SALE_RECORDED["properties"],
        **SALE_CHANGED["properties"],
        "status": {"type": "string", "enum": STATUSES},
        **STATUS_CONFLICT["properties"],
        "current_status": {
            "type": "string",
            "enum": STATUSES,
            "description": "A refused change: the order's status, which the line's does not fit",
        },
    },
    "additionalProperties": False,
    "description": "A recorded line has the fields of a recorded sale; a changed one those of a status "
    "change and `changed`; a refused one `error` and `fields` (and `current_status` when the change does "
    "not fit)",
}
CSV_RESULTS = _object(
    {
        "results": {"type": "array", "items": ref("CsvLine")},
        "summary": _object(
            {
                name: {"type": "integer", "minimum": 0}
                for name in ("lines", "recorded", "changed", "duplicates", "rejected")
            },
            ["lines", "recorded", "changed", "duplicates", "rejected"],
        ),
    },
    ["results", "summary"],
)
TRANSACTION_FIELDS: JSON = {
    "sales_id": {"type": "string", "description": "The network's sales id (`#flx_salesid#`)"},
    "order_number": {"type": "string"},
    "program_id": ID,
    "event": {"type": "string", "enum": list(EVENTS)},
    "status": {"type": "string", "enum": STATUSES},
    "sale_amount": MONEY_OUT,
    "commission": MONEY_OUT,
    "currency": {"type": "string"},
    "event_time": TIME,
    "click_id": nullable({"type": "string", "description": "The network click id; null when clickless"}),
    "publisher_id": ID,
    "channel": {"type": "string", "description": "How it was first reported: api, s2s, pixel, csv"},
    "created_at": TIME,
    "updated_at": TIME,
}
TRANSACTION = _object(TRANSACTION_FIELDS, list(TRANSACTION_FIELDS))
TRANSACTION_PAGE = _object(
    {
        "transactions": {"type": "array", "items": ref("Transaction"), "maxItems": 50},
        "next_before": nullable(
            {**ID, "description": "Pass as `before` for the next page; null on the last"}
        ),
    },
    ["transactions", "next_before"],
)
TRANSACTION_EVENT = _object(
    {
        "kind": {"type": "string", "enum": [kind.value for kind in EventKind]},
        "status": {"type": "string", "enum": STATUSES, "description": "The status as of this event"},
        "sale_amount": MONEY_OUT,
        "commission": MONEY_OUT,
        "channel": {"type": "string"},
        "occurred_at": TIME,
        "recorded_at": TIME,
    },
    ["kind", "status", "sale_amount", "commission", "channel", "occurred_at", "recorded_at"],
)
TRANSACTION_DETAIL = _object(
    {**TRANSACTION_FIELDS, "events": {"type": "array", "items": ref("TransactionEvent")}},
    [*TRANSACTION_FIELDS, "events"],
)

_WORD = {"type": "string", "maxLength": 100}
POSTBACK_FIELDS: JSON = {
    "name": nullable({"type": "string", "maxLength": 200}),
    "url": {
        "type": "string",
        "maxLength": 4096,
        "description": "URL template with `#macro#`s. Its host is read as the workers send to it (UTS #46:"
        " full-width characters and `。` normalised, international names as A-labels); a host that cannot be"
        " read, or a private or loopback address in any spelling, is refused",
    },
    "method": nullable({"type": "string", "enum": list(METHODS), "default": "GET"}),
    "traffic_source_ids": nullable(
        {
            "type": "array",
            "items": {"type": ["integer", "string"], "description": "One of your traffic source ids"},
            "description": "`[]`: every traffic source",
        }
    ),
    "program_ids": nullable(
        {
            "type": "array",
            "items": {
                "type": ["integer", "string"],
                "description": "A running program of the network (every program is open to every "
                "publisher); one already in the postback's scope may stay after it stops",
            },
            "description": "`[]`: every program",
        }
    ),
    "events": nullable(
        {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(POSTBACK_EVENTS)}}
    ),
    "statuses": nullable({"type": "array", "minItems": 1, "items": {"type": "string", "enum": STATUSES}}),
    "body_template": nullable({"type": "string", "maxLength": MAX_BODY, "description": "POST only"}),
    "content_type": nullable({"type": "string", "enum": ["", *CONTENT_TYPES]}),
    "headers": nullable(
        {
            "type": "object",
            "maxProperties": MAX_HEADERS,
            "additionalProperties": {"type": "string", "maxLength": 1000},
            "description": "Custom request headers: names are HTTP tokens, values Latin-1 text (no Host,"
            " Content-Length or hop-by-hop headers); characters a header cannot carry that a macro brings are"
            " sent percent-encoded as UTF-8",
        }
    ),
    "status_map": nullable(
        {
            "type": "object",
            "propertyNames": {"enum": STATUSES},
            "additionalProperties": nullable(_WORD),
            "description": "Our status -> your tracker's word, sent as `#status#`",
        }
    ),
    "success_body_contains": nullable(
        {"type": "string", "maxLength": 200, "description": "A 2xx without this text fails"}
    ),
    "active": nullable({"type": "boolean", "default": True}),
    "signing_secret": nullable(
        {
            "type": "boolean",
            "description": "true: make a new signing secret (rotating); false: remove it. A POST signs its"
            " body, a GET its URL as received (see README, Signatures)",
        }
    ),
}
POSTBACK_CREATE = _object(POSTBACK_FIELDS, ["url"])
POSTBACK_UPDATE = {**_object(POSTBACK_FIELDS), "description": "Only the fields sent change"}
POSTBACK_PREVIEW = {
    **_object({**POSTBACK_FIELDS, "url": nullable(POSTBACK_FIELDS["url"])}),
    "description": "The postback's fields, none required (a draft may lack its URL). Each field sent is "
    "checked as on saving, a wrong type included (400 naming it); what the templates say (lint errors, a "
    "private host) comes back as findings in the 200.",
}
POSTBACK = _object(
    {
        "id": ID,
        "name": {"type": "string"},
        "url": {"type": "string"},
        "method": {"type": "string", "enum": list(METHODS)},
        "traffic_source_ids": {"type": "array", "items": ID},
        "program_ids": {"type": "array", "items": ID},
        "events": {"type": "array", "items": {"type": "string", "enum": list(POSTBACK_EVENTS)}},
        "statuses": {"type": "array", "items": {"type": "string", "enum": STATUSES}},
        "body_template": nullable({"type": "string"}),
        "content_type": nullable({"type": "string", "enum": list(CONTENT_TYPES)}),
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "status_map": {"type": "object", "additionalProperties": {"type": "string"}},
        "success_body_contains": nullable({"type": "string"}),
        "active": {"type": "boolean"},
        "signing_secret": nullable({"type": "string", "pattern": "^whsec_"}),
        "status": {"type": "string", "enum": ["active", "paused", "failing"]},
        "paused_reason": nullable({"type": "string"}),
        "last_delivery": nullable(
            _object(
                {
                    "id": ID,
                    "state": {"type": "string", "enum": [state.value for state in DeliveryState]},
                    "status_code": nullable({"type": "integer"}),
                    "error_class": nullable({"type": "string"}),
                    "at": TIME,
                },
                ["id", "state", "status_code", "error_class", "at"],
            )
        ),
        "success_rate_24h": nullable({"type": "number", "minimum": 0, "maximum": 1}),
        "created_at": TIME,
        "updated_at": TIME,
    },
)
POSTBACK["required"] = list(POSTBACK["properties"])
POSTBACK_LIST = _object({"postbacks": {"type": "array", "items": ref("Postback")}}, ["postbacks"])

MARKED = {
    "type": "array",
    "description": "While the template has errors (url or body null): what would be sent as far as it can "
    "be told, in pieces; a piece with a problem is the template's text at a finding, as written",
    "items": _object(
        {"text": {"type": "string"}, "problem": nullable({"type": "string"})}, ["text", "problem"]
    ),
}
PREVIEW = _object(
    {
        "method": {"type": "string"},
        "url": nullable(
            {"type": "string", "description": "The URL expanded for a sample sale; null on errors"}
        ),
        "body": nullable({"type": "string"}),
        "content_type": nullable({"type": "string"}),
        "ok": {
            "type": "boolean",
            "description": "false when a finding is an error (saving would be refused)",
        },
        "findings": {
            "type": "array",
            "items": _object(
                {
                    "field": {"type": "string", "enum": ["url", "body_template", "headers"]},
                    "severity": {"type": "string", "enum": ["error", "warning"]},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "start": {"type": "integer", "minimum": 0},
                    "end": {"type": "integer", "minimum": 0},
                },
                ["field", "severity", "code", "message", "start", "end"],
            ),
        },
        "url_marked": nullable(MARKED),
        "body_marked": nullable(MARKED),
    },
    ["method", "url", "body", "content_type", "ok", "findings", "url_marked", "body_marked"],
)
TEST_RESULT = _object(
    {
        "ok": {"type": "boolean"},
        "request": _object(
            {"method": {"type": "string"}, "url": {"type": "string"}, "body": nullable({"type": "string"})},
            ["method", "url", "body"],
        ),
        "status_code": nullable({"type": "integer"}),
        "reason": {"type": "string"},
        "duration_ms": {"type": "integer", "minimum": 0},
        "resolved_ip": nullable({"type": "string"}),
        "response_excerpt": nullable({"type": "string"}),
        "error_class": nullable({"type": "string"}),
        "error": nullable({"type": "string"}),
    },
    ["ok", "request", "status_code", "reason", "duration_ms", "resolved_ip", "response_excerpt"],
)

_TEXT_OR_NULL = nullable({"type": "string"})
DELIVERY_FIELDS: JSON = {
    "id": ID,
    "postback_id": ID,
    "transaction_event_id": ID,
    "state": {"type": "string", "enum": [state.value for state in DeliveryState]},
    "attempt_count": {"type": "integer", "minimum": 0},
    "next_attempt_at": nullable(TIME),
    "method": {**_TEXT_OR_NULL, "description": "The last attempt's method (null before the first attempt)"},
    "url": {**_TEXT_OR_NULL, "description": "The last attempt's URL, expanded (null before one)"},
    "body": {**_TEXT_OR_NULL, "description": "The last attempt's request body (null without one)"},
    "last_status_code": nullable({"type": "integer"}),
    "last_error_class": nullable({"type": "string", "enum": [error.value for error in ErrorClass]}),
    "last_error": _TEXT_OR_NULL,
    "created_at": TIME,
    "updated_at": TIME,
    "completed_at": nullable(TIME),
}
DELIVERY = _object(DELIVERY_FIELDS, list(DELIVERY_FIELDS))
_SALE_CONTEXT: JSON = {
    "order_number": {"type": "string"},
    "sales_id": {"type": "string"},
    "event": {"type": "string", "enum": list(POSTBACK_EVENTS), "description": "What fired it"},
    "sub_id": nullable({"type": "string", "maxLength": SUB_ID_LENGTH, "description": "The click's `fobs`"}),
}
_STAFF_CONTEXT: JSON = {
    "publisher_id": ID,
    "publisher": {"type": "string"},
    "postback": _TEXT_OR_NULL,
    "program": {"type": "string"},
    "transaction_id": ID,
    "destination_host": _TEXT_OR_NULL,
    "click_id": _TEXT_OR_NULL,
}
DELIVERY_ROW = {
    **_object({**DELIVERY_FIELDS, **_SALE_CONTEXT, **_STAFF_CONTEXT}, [*DELIVERY_FIELDS, *_SALE_CONTEXT]),
    "description": "A delivery of the log; with a staff token also `publisher_id` ... `click_id`",
}
DELIVERY_PAGE = _object(
    {
        "deliveries": {"type": "array", "items": ref("DeliveryRow"), "maxItems": 50},
        "next_before": nullable(
            {**ID, "description": "Pass as `before` for the next page; null on the last"}
        ),
    },
    ["deliveries", "next_before"],
)
ATTEMPT_FIELDS: JSON = {
    "number": {"type": "integer", "minimum": 1},
    "outcome": {"type": "string", "enum": [outcome.value for outcome in AttemptOutcome]},
    "started_at": TIME,
    "duration_ms": nullable({"type": "integer", "minimum": 0}),
    "method": {"type": "string"},
    "url": {"type": "string"},
    "request_body": _TEXT_OR_NULL,
    "resolved_ip": _TEXT_OR_NULL,
    "status_code": nullable({"type": "integer"}),
    "response_headers": nullable({"type": "object"}),
    "response_excerpt": nullable(
        {"type": "string", "description": "At most 4 KiB of the answer: hostile text"}
    ),
    "error_class": nullable({"type": "string", "enum": [error.value for error in ErrorClass]}),
    "error_message": _TEXT_OR_NULL,
}
ATTEMPT = {
    **_object(
        {**ATTEMPT_FIELDS, "request_headers": {"type": "object"}, "worker": _TEXT_OR_NULL},
        list(ATTEMPT_FIELDS),
    ),
    "description": "One try; with a staff token also `request_headers` and `worker`",
}
DELIVERY_DETAIL = {
    **_object(
        {
            **DELIVERY_FIELDS,
            "attempts": {"type": "array", "items": ref("Attempt")},
            "publisher_id": ID,
            "transaction_id": ID,
            "sales_id": {"type": "string"},
            "order_number": {"type": "string"},
            "click_id": _TEXT_OR_NULL,
            "destination_host": _TEXT_OR_NULL,
        },
        [*DELIVERY_FIELDS, "attempts"],
    ),
    "description": "The delivery with every attempt; with a staff token also the sale's ids",
}
REPLAYED = _object(
    {
        "replayed": {"type": "boolean", "const": True},
        "message": {"type": "string"},
        "delivery": ref("Delivery"),
    },
    ["replayed", "message", "delivery"],
)
HEALTH = _object(
    {
        "status": {"type": "string", "enum": ["ok", "down"]},
        "checks": _object(
            {
                "database": {"type": "string", "description": "`ok` or `down: <error class>`"},
                "redis": {"type": "string"},
            },
            ["database", "redis"],
        ),
        "error": {"type": "string", "description": "Only when down: `unreachable: redis` (or database)"},
        "delivery": _object(
            {
                "status": {
                    "type": "string",
                    "enum": ["ok", "degraded", "unknown"],
                    "description": "`degraded` when no worker or no pump is alive, `unknown` when Redis is "
                    "down; information only, never the cause of a 503",
                },
                "workers": {"type": ["integer", "null"], "minimum": 0, "description": "RQ workers alive"},
                "pumps": {"type": ["integer", "null"], "minimum": 0, "description": "Pumps alive"},
                "warnings": {"type": "array", "items": {"type": "string"}, "description": "What is missing"},
            },
            ["status", "workers", "pumps"],
        ),
    },
    ["status", "checks", "delivery"],
)
LIVENESS = _object({"status": {"type": "string", "enum": ["ok"]}}, ["status"])

SCHEMAS: dict[str, JSON] = {
    "Error": ERROR,
    "StatusConflict": STATUS_CONFLICT,
    "SaleReport": SALE_REPORT,
    "SaleRecorded": SALE_RECORDED,
    "StatusChange": STATUS_CHANGE,
    "StatusChanged": STATUS_CHANGED,
    "StatusChangeByOrder": STATUS_BY_ORDER,
    "SaleChanged": SALE_CHANGED,
    "Transaction": TRANSACTION,
    "TransactionPage": TRANSACTION_PAGE,
    "TransactionEvent": TRANSACTION_EVENT,
    "TransactionDetail": TRANSACTION_DETAIL,
    "CsvLine": CSV_LINE,
    "CsvResults": CSV_RESULTS,
    "PostbackCreate": POSTBACK_CREATE,
    "PostbackUpdate": POSTBACK_UPDATE,
    "PostbackPreview": POSTBACK_PREVIEW,
    "Postback": POSTBACK,
    "PostbackList": POSTBACK_LIST,
    "Preview": PREVIEW,
    "TestResult": TEST_RESULT,
    "Delivery": DELIVERY,
    "DeliveryRow": DELIVERY_ROW,
    "DeliveryPage": DELIVERY_PAGE,
    "Attempt": ATTEMPT,
    "DeliveryDetail": DELIVERY_DETAIL,
    "Replayed": REPLAYED,
    "Health": HEALTH,
    "Liveness": LIVENESS,
}
