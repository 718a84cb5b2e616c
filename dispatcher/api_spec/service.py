"""The tracking link, the probes, and this reference itself."""

from __future__ import annotations

from dispatcher.api_spec.common import JSON, json_response, path_id, query
from dispatcher.api_spec.common import ref as schema
from dispatcher.models.ledger import SUB_ID_LENGTH

HTML_PAGE = {"text/html": {"schema": {"type": "string"}}}
SUB_IDS = [
    query(
        name,
        f"The publisher's sub id `{name}`, at most {SUB_ID_LENGTH} characters, sent back as `#{name}#`",
        {"type": "string", "maxLength": SUB_ID_LENGTH},
        "their-click-id" if name == "fobs" else None,
    )
    for name in ("fobs", "fobs2", "fobs3", "fobs4", "fobs5")
]
CLICK: JSON = {
    "get": {
        "tags": ["Clicks"],
        "operationId": "trackClick",
        "summary": "A publisher's tracking link: record the click, redirect to the landing page",
        "description": "Answers 302 to the program's landing URL with the network click id in place of "
        "`{clickid}`, else added as `clickid=`. Refusals are HTML pages for the visitor's browser, not JSON.",
        "parameters": [
            path_id("program_id", "The advertiser's program", 7),
            query("pub", "The publisher id", {"type": "string"}, "12", required=True),
            query("ts", "One of that publisher's traffic source ids", {"type": "string"}, "3", required=True),
            *SUB_IDS,
        ],
        "responses": {
            "302": {
                "description": "Recorded; off to the landing page (never cached)",
                "headers": {
                    "Location": {
                        "description": "The landing URL with the network click id",
                        "schema": {"type": "string"},
                        "example": "https://shop.example/landing?utm=aff&clickid=Xq3v9aJ0kW2sN8pLrT5yBg",
                    }
                },
            },
            "400": {"description": "A missing or foreign traffic source, or a sub id too long (a "
                "page naming it)",
                    "content": HTML_PAGE},
            "404": {"description": "No active program with this id (a page)", "content": HTML_PAGE},
        },
    }
}  # fmt: skip
READINESS_RESPONSES: JSON = {
    "200": json_response(
        "Both reachable",
        schema("Health"),
        {
            "ok": {
                "status": "ok",
                "checks": {"database": "ok", "redis": "ok"},
                "delivery": {"status": "ok", "workers": 4, "pumps": 1},
            },
            "no worker": {
                "status": "ok",
                "checks": {"database": "ok", "redis": "ok"},
                "delivery": {
                    "status": "degraded",
                    "workers": 0,
                    "pumps": 1,
                    "warnings": [
                        "no worker alive: sales are recorded, their postbacks wait until a worker starts"
                    ],
                },
            },
        },
    ),
    "503": json_response(
        "Something is down, named in `error`",
        schema("Health"),
        {
            "redis down": {
                "status": "down",
                "checks": {"database": "ok", "redis": "down: ConnectionError"},
                "error": "unreachable: redis",
                "delivery": {"status": "unknown", "workers": None, "pumps": None},
            }
        },
    ),
}
LIVEZ: JSON = {
    "get": {
        "tags": ["Operations"],
        "operationId": "livez",
        "summary": "Liveness: the process answers",
        "description": "Touches neither the database nor Redis: a liveness probe must not restart a healthy "
        "web server because a service it depends on is down (that is what `/readyz` says).",
        "responses": {"200": json_response("It answers", schema("Liveness"), {"ok": {"status": "ok"}})},
    }
}
READYZ: JSON = {
    "get": {
        "tags": ["Operations"],
        "operationId": "readyz",
        "summary": "Readiness: can this process reach its database and Redis?",
        "description": "For a readiness probe or a load balancer's health check: 503 takes the process out "
        "of rotation until what is named in `error` answers again. `delivery` counts the workers and pumps "
        "alive, for information: without them sales are still recorded, so they never make it a 503.",
        "responses": READINESS_RESPONSES,
    }
}
HEALTH: JSON = {
    "get": {
        "tags": ["Operations"],
        "operationId": "health",
        "summary": "Readiness, as `/readyz` (kept for existing probes and scripts)",
        "responses": READINESS_RESPONSES,
    }
}
METRICS: JSON = {
    "get": {
        "tags": ["Operations"],
        "operationId": "metrics",
        "summary": "Prometheus metrics (text format)",
        "description": "With `METRICS_TOKEN` set, a scrape needs `Authorization: Bearer "
            "<METRICS_TOKEN>`; without "
        "it only a direct request from the host itself (loopback, no proxy header) is answered.",
        "security": [{"metricsToken": []}, {}],
        "responses": {
            "200": {
                "description": "Prometheus text exposition format",
                "content": {
                    "text/plain": {
                        "schema": {"type": "string"},
                        "example": "# TYPE postback_deliveries_pending "
                            "gauge\npostback_deliveries_pending 0.0\n",
                    }
                },
            },
            # dispatcher/errors.py answers JSON only under /api/, /s2s/ and /healthz: these are pages.
            "401": {"description": "METRICS_TOKEN is set and the bearer token is missing or wrong (a page)",
                    "content": HTML_PAGE},
            "403": {"description": "Not from this host, and no METRICS_TOKEN is set (a page)",
                    "content": HTML_PAGE},
        },
    }
}  # fmt: skip
OPENAPI: JSON = {
    "get": {
        "tags": ["Reference"],
        "operationId": "openapi",
        "summary": "This document (OpenAPI 3.1)",
        "responses": {
            "200": {
                "description": "The OpenAPI document",
                "content": {
                    "application/json": {"schema": {"type": "object", "required": ["openapi", "paths"]}}
                },
            }
        },
    }
}
DOCS: JSON = {
    "get": {
        "tags": ["Reference"],
        "operationId": "apiDocs",
        "summary": "This document as a page",
        "responses": {"200": {"description": "The reference, rendered on the server", "content": HTML_PAGE}},
    }
}

PATHS: dict[str, JSON] = {
    "/c/{program_id}": CLICK,
    "/livez": LIVEZ,
    "/readyz": READYZ,
    "/healthz": HEALTH,
    "/metrics": METRICS,
    "/api/openapi.json": OPENAPI,
    "/api/docs": DOCS,
}
