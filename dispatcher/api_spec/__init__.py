"""The OpenAPI 3.1 document of the HTTP API, built from data kept next to the code it describes.

`document()` is what `GET /api/openapi.json` serves and `GET /api/docs` renders. `tests/api/test_openapi.py`
keeps it honest: every API route is in it, everything in it is a route, its examples fit its schemas, and real
answers fit its response schemas.
"""

from __future__ import annotations

import copy
from functools import cache

from dispatcher.api_spec import conversions, deliveries, postbacks, programs, service, transactions
from dispatcher.api_spec.common import JSON
from dispatcher.api_spec.schemas import SCHEMAS

TOKEN_FORMAT = "<kind>_<12 hex key id>_<secret>"
SECURITY_SCHEMES: JSON = {
    "advertiserKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "adv_...",
        "description": f"The advertiser's API key from `create-advertiser` (`adv_...`, {TOKEN_FORMAT}).",
    },
    "s2sToken": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "The advertiser's S2S token from `create-advertiser` (`s2s_...`), for URLs.",
    },
    "s2sSecure": {
        "type": "apiKey",
        "in": "query",
        "name": "secure",
        "description": "The same S2S token under Integr8's name (`?secure=s2s_...`).",
    },
    "publisherToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "pub_...",
        "description": "A publisher's API token (`pub_...`) from `create-publisher` or the portal's "
        "account page.",
    },
    "staffToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "stf_...",
        "description": "A staff member's API token (`stf_...`) from the support console's account page; "
        "accepted on the delivery routes, where every publisher is visible.",
    },
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The `METRICS_TOKEN` setting, when it is set.",
    },
}
TAGS = [
    {"name": "Transactions", "description": "Advertisers report sales and leads, and change their status."},
    {"name": "Postbacks", "description": "Publishers register the URLs the network calls for their sales."},
    {"name": "Deliveries", "description": "Every call made for a postback, with its attempts; replay."},
    {"name": "Conversions", "description": "What you earned, sale by sale, and files for your tracker."},
    {"name": "Tracking links", "description": "The programs you may promote and your link for each."},
    {"name": "Clicks", "description": "The tracking link."},
    {"name": "Operations", "description": "Probes for load balancers and Prometheus."},
    {"name": "Reference", "description": "This document."},
]


@cache
def _built() -> JSON:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Postback Dispatcher API",
            "version": "1",
            "description": 'Errors of the JSON API are a 4xx with `{"error": message, "fields": {name: '
            "problem}}`, never a 500; a refused request writes nothing. Money is a decimal in text; "
            "times are "
            "ISO 8601 in UTC.",
        },
        "servers": [{"url": "/"}],
        "tags": TAGS,
        "paths": {
            **transactions.PATHS,
            **postbacks.PATHS,
            **deliveries.PATHS,
            **programs.PATHS,
            **conversions.PATHS,
            **service.PATHS,
        },
        "components": {"schemas": SCHEMAS, "securitySchemes": SECURITY_SCHEMES},
    }


def document() -> JSON:
    """A fresh copy of the document: callers (the docs page, tests, fuzzers) may change theirs."""
    return copy.deepcopy(_built())
