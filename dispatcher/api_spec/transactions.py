"""Operations of advertisers: report sales (JSON, S2S URL or pixel, CSV), change their status (by sales id or
order number; S2S and CSV by reporting the order again) and read them back."""

from __future__ import annotations

from dispatcher.advertiser.transactions import PAGE_SIZE
from dispatcher.api_spec.common import (
    DEACTIVATED_ADVERTISER,
    DEACTIVATED_S2S,
    JSON,
    UNAUTHORIZED_ADVERTISER,
    UNAUTHORIZED_S2S,
    error,
    json_body,
    json_response,
    query,
    ref,
)
from dispatcher.api_spec.common import (
    ID_OR_BLANK as ID_FILTER,
)
from dispatcher.ledger.reports import EVENTS, INITIAL_STATUSES, STATUSES, SUB_ID_NAMES
from dispatcher.web.s2s_params import ALIASES

TAG = "Transactions"
ADVERTISER: list[dict[str, list[str]]] = [{"advertiserKey": []}]
RECORDED = {"sales_id": "k3Jd8xQp0aZw7LmN", "status": "pending", "commission": "24.99", "currency": "USD",
            "deliveries": 1}  # fmt: skip
DUPLICATE = {**RECORDED, "duplicate": True}
REFUSED = error(
    "A value is refused (`fields` names it) or the click is unknown; nothing was written.",
    "sale_amount: must have at most 2 decimals for USD, got '19.999'",
    {"sale_amount": "must have at most 2 decimals for USD"},
)
TOO_LARGE = error(
    "The body is larger than the limit.",
    "body: must be at most 65536 bytes",
    {"body": "must be at most 65536 bytes"},
)

REPORT: JSON = {
    "post": {
        "tags": [TAG],
        "operationId": "reportSale",
        "summary": "Report a sale or lead",
        "description": "Records the transaction, computes the commission and creates one delivery "
        "per matching "
        "postback, in one database transaction. The same (program, order_number, event) again answers 200 "
        "with the original and `duplicate: true`; nothing is recorded twice.",
        "security": ADVERTISER,
        "requestBody": json_body(
            ref("SaleReport"),
            {
                "sale": {
                    "click_id": "Xq3v9aJ0kW2sN8pLrT5yBg",
                    "order_number": "A-1001",
                    "sale_amount": "249.90",
                },
                "approved lead": {
                    "click_id": "Xq3v9aJ0kW2sN8pLrT5yBg",
                    "order_number": "L-77",
                    "sale_amount": 0,
                    "event": "lead",
                    "status": "approved",
                    "event_time": "2026-11-20T14:30:00Z",
                },
            },
        ),
        "responses": {
            "201": {
                **json_response("Recorded", ref("SaleRecorded"), {"recorded": RECORDED}),
                "links": {
                    "ChangeStatus": {
                        "operationId": "changeSaleStatus",
                        "parameters": {"sales_id": "$response.body#/sales_id"},
                        "description": "The new sale's `sales_id` is the path of its status changes",
                    }
                },
            },
            "200": json_response(
                "Already recorded: the original", ref("SaleRecorded"), {"duplicate": DUPLICATE}
            ),
            "400": REFUSED,
            "401": UNAUTHORIZED_ADVERTISER,
            "403": DEACTIVATED_ADVERTISER,
            "413": TOO_LARGE,
        },
    }
}

CHANGED = {
    "sales_id": "k3Jd8xQp0aZw7LmN",
    "event": "approved",
    "status": "approved",
    "sale_amount": "249.90",
    "commission": "24.99",
    "currency": "USD",
    "deliveries": 1,
}
CONFLICT = json_response(
    "The change does not fit the current status",
    ref("StatusConflict"),
    {
        "conflict": {
            "error": "status: a declined transaction cannot become approved",
            "fields": {"status": "a declined transaction cannot become approved"},
            "current_status": "declined",
        }
    },
)
STATUS: JSON = {
    "post": {
        "tags": [TAG],
        "operationId": "changeSaleStatus",
        "summary": "Approve, decline, reverse or adjust a transaction",
        "description": "`pending` becomes `approved` or `declined`; `approved` becomes `reversed`. A "
        "`sale_amount` "
        "adjusts a pending or approved transaction (the commission follows) and may come with a "
        "status change. "
        "Each change is an event that fires matching postbacks.",
        "security": ADVERTISER,
        "parameters": [
            {
                "name": "sales_id",
                "in": "path",
                "required": True,
                "description": "The network's sales id from the report's answer",
                "schema": {"type": "string"},
                "example": "k3Jd8xQp0aZw7LmN",
            }
        ],
        "requestBody": json_body(
            ref("StatusChange"),
            {
                "approve": {"status": "approved"},
                "adjust": {"sale_amount": "200.00"},
                "approve with a new amount": {"status": "approved", "sale_amount": "180.00"},
            },
        ),
        "responses": {
            "200": json_response("Changed", ref("StatusChanged"), {"approved": CHANGED}),
            "400": error(
                "A value is refused, or neither status nor sale_amount was given.",
                "status: must be one of approved, declined, reversed, got 'paid'",
                {"status": "must be one of approved, declined, reversed"},
            ),
            "401": UNAUTHORIZED_ADVERTISER,
            "403": DEACTIVATED_ADVERTISER,
            "404": error(
                "No transaction of this advertiser has this sales id.",
                "sales_id: no transaction 'nope' of this advertiser",
                {"sales_id": "is not a transaction of this advertiser"},
            ),
            "409": CONFLICT,
            "413": TOO_LARGE,
        },
    }
}

STATUS_BY_ORDER: JSON = {
    "post": {
        "tags": [TAG],
        "operationId": "changeSaleStatusByOrder",
        "summary": "Approve, decline, reverse or adjust a transaction by its order number",
        "description": "The same change, rules, errors and postbacks as "
        "`POST /api/v1/transactions/{sales_id}/status`, for the transaction your order number names: "
        "its `event` (default `sale`), and its "
        "`program_id` when the order number is in several of your programs (else a 400 saying so).",
        "security": ADVERTISER,
        "requestBody": json_body(
            ref("StatusChangeByOrder"),
            {
                "approve": {"order_number": "A-1001", "status": "approved"},
                "reverse a lead of one program": {
                    "order_number": "L-77",
                    "event": "lead",
                    "program_id": 7,
                    "status": "reversed",
                },
                "adjust": {"order_number": "A-1001", "sale_amount": "200.00"},
            },
        ),
        "responses": {
            "200": json_response("Changed", ref("StatusChanged"), {"approved": CHANGED}),
            "400": error(
                "A value is refused, or the order number is in several of your programs and `program_id` "
                "is missing; nothing was written.",
                "program_id: is required: order 'A-1001' (sale) is in several of your programs (7, 9)",
                {"program_id": "is required: order 'A-1001' (sale) is in several of your programs (7, 9)"},
            ),
            "401": UNAUTHORIZED_ADVERTISER,
            "403": DEACTIVATED_ADVERTISER,
            "404": error(
                "No transaction of this advertiser has this order number (event, program).",
                "order_number: no transaction 'A-1001' (sale) of this advertiser",
                {"order_number": "is not a transaction of this advertiser"},
            ),
            "409": CONFLICT,
            "413": TOO_LARGE,
        },
    }
}
TEXT = {"type": "string", "maxLength": 255}
DAY_OR_TIME = {
    "type": "string",
    "description": "A date (`to` includes the whole day) or an ISO 8601 time (UTC unless it says otherwise)",
}
LIST_PARAMETERS = [
    query("order_number", "Your order number", TEXT, "A-1001"),
    query("status", "Current status", {"type": "string", "enum": ["", *STATUSES]}, "pending"),
    query("event", "sale or lead", {"type": "string", "enum": ["", *EVENTS]}, "sale"),
    query("program_id", "One of your programs (another's finds nothing)", ID_FILTER, 7),
    query("from", "The sale's event time, on or after", DAY_OR_TIME, "2026-11-01"),
    query("to", "The sale's event time, on or before", DAY_OR_TIME, "2026-11-30"),
    query("before", "Keyset cursor: the previous page's `next_before`", ID_FILTER, 90412),
]
TRANSACTION = {
    "sales_id": "k3Jd8xQp0aZw7LmN",
    "order_number": "A-1001",
    "program_id": 7,
    "event": "sale",
    "status": "approved",
    "sale_amount": "249.90",
    "commission": "24.99",
    "currency": "USD",
    "event_time": "2026-11-20T14:30:00Z",
    "click_id": "Xq3v9aJ0kW2sN8pLrT5yBg",
    "publisher_id": 12,
    "channel": "s2s",
    "created_at": "2026-11-20T14:30:01Z",
    "updated_at": "2026-11-22T09:00:00Z",
}
LIST: JSON = {
    "tags": [TAG],
    "operationId": "listTransactions",
    "summary": f"Your transactions, newest first, {PAGE_SIZE} per page",
    "description": "Only your own programs' transactions. Filters combine; an unknown parameter is a 400 "
    "naming it. Keyset pages: pass `next_before` as `before`, so the thousandth page costs what the first "
    "does.",
    "security": ADVERTISER,
    "parameters": LIST_PARAMETERS,
    "responses": {
        "200": json_response(
            "One page", ref("TransactionPage"), {"page": {"transactions": [TRANSACTION], "next_before": None}}
        ),
        "400": error(
            "A filter is refused, named in `fields`.",
            "status: must be one of pending, approved, declined, reversed, got 'paid'",
            {"status": "must be one of pending, approved, declined, reversed"},
        ),
        "401": UNAUTHORIZED_ADVERTISER,
        "403": DEACTIVATED_ADVERTISER,
    },
}
ONE: JSON = {
    "get": {
        "tags": [TAG],
        "operationId": "getTransaction",
        "summary": "One of your transactions with its history",
        "security": ADVERTISER,
        "parameters": [
            {
                "name": "sales_id",
                "in": "path",
                "required": True,
                "description": "The network's sales id; another advertiser's answers 404, like a missing one",
                "schema": {"type": "string"},
                "example": "k3Jd8xQp0aZw7LmN",
            }
        ],
        "responses": {
            "200": json_response(
                "The transaction and its events, oldest first",
                ref("TransactionDetail"),
                {
                    "approved": {
                        **TRANSACTION,
                        "events": [
                            {
                                "kind": "created",
                                "status": "pending",
                                "sale_amount": "249.90",
                                "commission": "24.99",
                                "channel": "s2s",
                                "occurred_at": "2026-11-20T14:30:00Z",
                                "recorded_at": "2026-11-20T14:30:01Z",
                            },
                            {
                                "kind": "approved",
                                "status": "approved",
                                "sale_amount": "249.90",
                                "commission": "24.99",
                                "channel": "s2s",
                                "occurred_at": "2026-11-22T09:00:00Z",
                                "recorded_at": "2026-11-22T09:00:00Z",
                            },
                        ],
                    }
                },
            ),
            "401": UNAUTHORIZED_ADVERTISER,
            "403": DEACTIVATED_ADVERTISER,
            "404": error(
                "No transaction of this advertiser has this sales id.",
                "sales_id: no transaction 'nope' of this advertiser",
                {"sales_id": "is not a transaction of this advertiser"},
            ),
        },
    }
}

CSV_EXAMPLE = (
    "click_id,order_number,sale_amount,currency,event,status,event_time\n"
    "Xq3v9aJ0kW2sN8pLrT5yBg,A-1001,249.90,USD,sale,pending,2026-11-20T14:30:00Z\n"
    "Pw8sL2mQ9vC4xZ7nB1tKeA,A-1002,19.99\n"
)
BATCH: JSON = {
    "post": {
        "tags": [TAG],
        "operationId": "uploadSales",
        "summary": "Upload missed or offline sales as CSV",
        "description": "One sale per line: "
        "`click_id,order_number,sale_amount[,currency,event,status,event_time]`; "
        "a first line of column names is a header (then columns may come in any order, plus `commission` and "
        "the clickless `publisher_id`, `traffic_source_id`, `program_id`). Each line is checked and recorded "
        "on its own; the answer streams one result per line, then a summary. A line for a recorded order "
        "with another `status` (approved, declined, reversed) or amount changes it (`changed: true`; a "
        "change that does not fit is refused with `current_status`); the same status and amount again is a "
        "duplicate.",
        "security": ADVERTISER,
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}, "examples": {"two sales": {"value": CSV_EXAMPLE}}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "contentMediaType": "text/csv"}},
                    }
                },
            },
        },
        "responses": {
            "200": json_response(
                "One result per line, then the counts",
                ref("CsvResults"),
                {
                    "one recorded, one refused": {
                        "results": [
                            {"line": 2, **RECORDED},
                            {
                                "line": 3,
                                "error": "click_id: no click with this id, got 'Pw8sL2mQ9vC4xZ7nB1tKeA'",
                                "fields": {"click_id": "no click with this id"},
                            },
                        ],
                        "summary": {"lines": 2, "recorded": 1, "changed": 0, "duplicates": 0, "rejected": 1},
                    }
                },
            ),
            "400": error(
                "The header line or the upload is refused (a multipart upload without `file`).",
                "file: is required (curl -F file=@sales.csv)",
                {"file": "is required (curl -F file=@sales.csv)"},
            ),
            "401": UNAUTHORIZED_ADVERTISER,
            "403": DEACTIVATED_ADVERTISER,
            "413": error(
                "The file is larger than 64 MB.",
                "file: must be at most 64 MB",
                {"file": "must be at most 64 MB"},
            ),
        },
    }
}

S2S_NAMES = {
    "clickid": ("The network click id", "Xq3v9aJ0kW2sN8pLrT5yBg"),
    "on": ("Order number (required)", "A-1001"),
    "sa": ("Sale amount (required), e.g. 249.90", "249.90"),
    "cur": ("ISO 4217 currency; default: the program's", "USD"),
    "event": (f"One of {', '.join(EVENTS)}", "sale"),
    "status": (
        f"A new order: one of {', '.join(INITIAL_STATUSES)}; a recorded order: its new status, one of "
        f"{', '.join(STATUSES)} (left out: no change)",
        "pending",
    ),
    "ca": ("Commission, only where the program accepts the advertiser's", None),
    "et": ("Event time: ISO 8601 or Unix seconds", None),
    "pub": ("Clickless sales: publisher id", None),
    "ts": ("Clickless sales: traffic source id", None),
    "program": ("Clickless sales: program id", None),
    **{
        name: (f"Clickless sales: the publisher's sub id, sent to postbacks as `#{name}#`", None)
        for name in SUB_ID_NAMES
    },
    "ip": ("Clickless sales: the visitor's IP address", None),
    "ua": ("Clickless sales: the visitor's user agent", None),
    **{alias: (f"Integr8's name for `{ours}`", None) for alias, ours in ALIASES.items()},
}
PIXEL = query("pixel", "`1`: answer a 1x1 transparent GIF (image pixel)", {"type": "string", "enum": ["1"]})
S2S_PARAMETERS = [
    *(
        query(name, description, {"type": "string"}, example)
        for name, (description, example) in S2S_NAMES.items()
    ),
    PIXEL,
]
GIF = {"image/gif": {"schema": {"type": "string", "contentMediaType": "image/gif"}}}


def _s2s(method: str) -> JSON:
    operation: JSON = {
        "tags": [TAG],
        "operationId": f"reportSaleS2s{method.capitalize()}",
        "summary": f"Report a sale by URL ({method.upper()})",
        "description": "For platforms that can only fire a URL. The same checks and answer as the JSON API; "
        "errors name the parameter as written (`sa`, not `sale_amount`). The URL of a recorded order with "
        "another `status` or `sa` changes it as the status route does (200, `changed: true`); a status it "
        "cannot take is a 409 naming the current one; the same status and amount is a duplicate."
        + (" A form body may carry the same names." if method == "post" else ""),
        "security": [{"s2sToken": []}, {"s2sSecure": []}],
        "parameters": S2S_PARAMETERS,
        "responses": {
            "201": json_response("Recorded", ref("SaleRecorded"), {"recorded": RECORDED}),
            "200": {
                "description": "Already recorded (JSON with `duplicate: true`), changed by this report "
                "(`changed: true`), or any success with `pixel=1`",
                "content": {
                    "application/json": {
                        "schema": {"anyOf": [ref("SaleRecorded"), ref("SaleChanged")]},
                        "examples": {
                            "duplicate": {"value": DUPLICATE},
                            "changed": {"value": {**CHANGED, "changed": True}},
                        },
                    },
                    **GIF,
                },
            },
            "400": json_response(
                "A parameter is refused (named as the URL wrote it), or the platform left a placeholder "
                "unfilled; nothing was written.",
                ref("Error"),
                {
                    "refused": {
                        "error": "sa: must be a number like 19.99, got 'abc'",
                        "fields": {"sa": "must be a number like 19.99"},
                        "ignored": ["amount"],
                    },
                    "unfilled": {
                        "error": "transaction_id: is the placeholder REPLACE that the platform did not "
                        "fill in: put the value there, got 'REPLACE'",
                        "fields": {
                            "transaction_id": "is the placeholder REPLACE that the platform did not fill in: "
                            "put the value there"
                        },
                    },
                },
            ),
            "401": UNAUTHORIZED_S2S,
            "403": DEACTIVATED_S2S,
            "409": CONFLICT,
        },
    }
    if method == "post":
        names = {name: {"type": "string"} for name in [*S2S_NAMES, "pixel"]}
        operation["requestBody"] = {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": names},
                    "examples": {
                        "sale": {
                            "value": {"clickid": "Xq3v9aJ0kW2sN8pLrT5yBg", "on": "A-1001", "sa": "249.90"}
                        }
                    },
                }
            },
        }
    return operation


PATHS: dict[str, JSON] = {
    "/api/v1/transactions": {**REPORT, "get": LIST},
    "/api/v1/transactions/{sales_id}": ONE,
    "/api/v1/transactions/status": STATUS_BY_ORDER,
    "/api/v1/transactions/{sales_id}/status": STATUS,
    "/api/v1/transactions/batch": BATCH,
    "/s2s/transaction": {"get": _s2s("get"), "post": _s2s("post")},
}
