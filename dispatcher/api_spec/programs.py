"""Programs a publisher may promote, each with its tracking link."""

from __future__ import annotations

from dispatcher.api_spec.common import ID_OR_BLANK as ID_OR_NONE
from dispatcher.api_spec.common import JSON, UNAUTHORIZED_PUBLISHER, error, json_response, query
from dispatcher.api_spec.schemas import ID, _object
from dispatcher.api_spec.service import SUB_IDS

TAG = "Tracking links"
PARAMETERS = [
    query("program_id", "Only this running program", ID_OR_NONE, 7),
    query("traffic_source_id", "One of your traffic sources, put in every link as `ts`", ID_OR_NONE, 3),
    *SUB_IDS,  # the tracking link's own sub id parameters: put into every link
]
PROGRAM = _object(
    {
        "id": ID,
        "name": {"type": "string"},
        "advertiser": {"type": "string"},
        "commission": {"type": "string", "description": "Per sale: `10%` or `5.00 USD`"},
        "currency": {"type": "string"},
        "landing_url": {"type": "string"},
        "tracking_link": {
            "type": ["string", "null"],
            "description": "`/c/<id>?pub=..&ts=..&fobs=..`: answers 302. Its traffic source is "
            "`traffic_source_id`, else your oldest active one; null when you have none (a click "
            "needs one)",
        },
        "lands_on": {"type": "string", "description": "The landing URL, NETWORK_CLICK_ID where the id goes"},
    },
    ["id", "name", "advertiser", "commission", "currency", "landing_url", "tracking_link", "lands_on"],
)
EXAMPLE = {
    "id": 7,
    "name": "Acme Shoes US",
    "advertiser": "Acme",
    "commission": "10%",
    "currency": "USD",
    "landing_url": "https://shop.example/",
    "tracking_link": "https://network.example/c/7?pub=12&ts=3&fobs=their-click-id",
    "lands_on": "https://shop.example/?clickid=NETWORK_CLICK_ID",
}
LIST: JSON = {
    "get": {
        "tags": [TAG],
        "operationId": "listPrograms",
        "summary": "Running programs with your tracking link for each",
        "security": [{"publisherToken": []}],
        "parameters": PARAMETERS,
        "responses": {
            "200": json_response(
                "The programs, by name",
                _object({"programs": {"type": "array", "items": PROGRAM}}, ["programs"]),
                {"programs": {"programs": [EXAMPLE]}},
            ),
            "400": error(
                "A parameter is refused, named in `fields`.",
                "traffic_source_id: is not one of your traffic sources, got '99'",
                {"traffic_source_id": "is not one of your traffic sources"},
            ),
            "401": UNAUTHORIZED_PUBLISHER,
        },
    }
}

PATHS: dict[str, JSON] = {"/api/v1/programs": LIST}
