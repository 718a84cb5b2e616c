"""Conversions: a publisher's transactions with commission, totals and postback outcome, or a file of them."""

from __future__ import annotations

from dispatcher.api_spec.common import ID_OR_BLANK as ID_OR_NONE
from dispatcher.api_spec.common import JSON, UNAUTHORIZED_PUBLISHER, error, json_response, query
from dispatcher.api_spec.schemas import ID, MONEY_OUT, TIME, _object
from dispatcher.ledger.clicks import SUB_ID_NAMES
from dispatcher.models.ledger import TransactionStatus

TAG = "Conversions"
STATUSES = [status.value for status in TransactionStatus]
SUB_IDS = list(SUB_ID_NAMES)
DAY = {"type": "string", "description": "A date; `to` includes the whole day (UTC)"}
PARAMETERS = [
    query("program_id", "Only this program's", ID_OR_NONE, 7),
    query("traffic_source_id", "Only this traffic source's", ID_OR_NONE, 3),
    query("status", "The transaction's status now", {"type": "string", "enum": ["", *STATUSES]}, "approved"),
    query("from", "Conversion time on or after this UTC day", DAY, "2026-11-01"),
    query("to", "Conversion time on or before this UTC day", DAY, "2026-11-30"),
    query("sub_id", "Any of the click's fobs..fobs5", {"type": "string", "maxLength": 255}, "their-click-id"),
    query("before", "Keyset cursor: the previous page's `next_before`", ID_OR_NONE, 5120),
    query(
        "format",
        "`json` (a page with totals), `csv` (every matching conversion) or `clickflare` (ClickFlare's "
        "manual upload: `click_id,payout,transaction_id,conversion_type,timestamp`, no header; declined and "
        "reversed sales always left out; lines without the click id left out)",
        {"type": "string", "enum": ["", "json", "csv", "clickflare"]},
        "json",
    ),
    query(
        "click_id",
        "For `clickflare`: the sub id that holds the tracker's click id (default fobs)",
        {"type": "string", "enum": ["", *SUB_IDS]},
        "fobs",
    ),
]
NULLABLE_TEXT = {"type": ["string", "null"]}
CONVERSION = _object(
    {
        "sales_id": {"type": "string"},
        "txid": {"type": "string", "description": "The `#txid#` the first postback of this sale carried"},
        "order_number": {"type": "string"},
        "program_id": ID,
        "program_name": {"type": "string"},
        "traffic_source_id": {"anyOf": [ID, {"type": "null"}]},
        "event": {"type": "string", "enum": ["sale", "lead"]},
        "status": {"type": "string", "enum": STATUSES},
        "sale_amount": MONEY_OUT,
        "commission": MONEY_OUT,
        "currency": {"type": "string", "minLength": 3, "maxLength": 3},
        "sub_ids": _object({name: NULLABLE_TEXT for name in SUB_IDS}, SUB_IDS),
        "event_time": TIME,
        "recorded_at": TIME,
        "postbacks": _object(
            {
                "outcome": {"type": "string", "enum": ["none", "succeeded", "pending", "failed"]},
                "succeeded": {"type": "integer", "minimum": 0},
                "failed": {"type": "integer", "minimum": 0},
                "pending": {"type": "integer", "minimum": 0},
            },
            ["outcome", "succeeded", "failed", "pending"],
        ),
    },
    [
        "sales_id",
        "txid",
        "order_number",
        "program_id",
        "event",
        "status",
        "sale_amount",
        "commission",
        "currency",
        "sub_ids",
        "event_time",
        "postbacks",
    ],
)
TOTAL = _object(
    {
        "key": {"type": "string", "description": "The day, program id or traffic source id (empty: none)"},
        "label": {"type": "string"},
        "currency": {"type": "string"},
        "conversions": {"type": "integer", "minimum": 0},
        "sale_amount": MONEY_OUT,
        "commission": _object({status: MONEY_OUT for status in STATUSES}, STATUSES),
    },
    ["key", "label", "currency", "conversions", "sale_amount", "commission"],
)
TOTALS_LIST = {"type": "array", "items": TOTAL}
PAGE = _object(
    {
        "conversions": {"type": "array", "items": CONVERSION, "maxItems": 50},
        "next_before": {
            "anyOf": [ID, {"type": "null"}],
            "description": "Pass as `before`; null on the last page",
        },
        "totals": _object(
            {name: TOTALS_LIST for name in ("overall", "by_day", "by_program", "by_traffic_source")},
            ["overall", "by_day", "by_program", "by_traffic_source"],
        ),
    },
    ["conversions", "next_before", "totals"],
)
EXAMPLE = {
    "sales_id": "k3Jd8xQp0aZw7LmN",
    "txid": "k3Jd8xQp0aZw7LmN-5531",
    "order_number": "A-1001",
    "program_id": 7,
    "program_name": "Acme Shoes US",
    "traffic_source_id": 3,
    "event": "sale",
    "status": "approved",
    "sale_amount": "249.90",
    "commission": "24.99",
    "currency": "USD",
    "sub_ids": {"fobs": "their-click-id", "fobs2": None, "fobs3": None, "fobs4": None, "fobs5": None},
    "event_time": "2026-11-20T14:29:58Z",
    "recorded_at": "2026-11-20T14:30:01Z",
    "postbacks": {"outcome": "succeeded", "succeeded": 2, "failed": 0, "pending": 0},
}
ONE_PAGE = json_response(
    "One page and the totals of every match (JSON), or the file (`format=csv|clickflare`, text/csv)",
    PAGE,
    {
        "page": {
            "conversions": [EXAMPLE],
            "next_before": None,
            "totals": {"overall": [], "by_day": [], "by_program": [], "by_traffic_source": []},
        }
    },
)

LIST: JSON = {
    "get": {
        "tags": [TAG],
        "operationId": "listConversions",
        "summary": "Your conversions, newest first, 50 per page, with totals; or every one as a file",
        "security": [{"publisherToken": []}],
        "parameters": PARAMETERS,
        "responses": {
            "200": {
                **ONE_PAGE,
                "content": {**ONE_PAGE["content"], "text/csv": {"schema": {"type": "string"}}},
            },
            "400": error(
                "A filter is refused, named in `fields`.",
                "status: must be one of pending, approved, declined, reversed, got 'paid'",
                {"status": "must be one of pending, approved, declined, reversed"},
            ),
            "401": UNAUTHORIZED_PUBLISHER,
        },
    }
}

PATHS: dict[str, JSON] = {"/api/v1/conversions": LIST}
