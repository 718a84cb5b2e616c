"""Small builders for the OpenAPI document, so each operation reads as what it does, not as nested dicts."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]
ERROR_MEDIA = "application/json"


def ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: JSON) -> JSON:
    """The schema, or JSON null (the API treats null like an absent optional field)."""
    return {"anyOf": [schema, {"type": "null"}]}


def json_body(
    schema: JSON, examples: dict[str, Any], *, required: bool = True, description: str = ""
) -> JSON:
    body: JSON = {
        "required": required,
        "content": {"application/json": {"schema": schema, "examples": _examples(examples)}},
    }
    if description:
        body["description"] = description
    return body


def json_response(description: str, schema: JSON, examples: dict[str, Any] | None = None) -> JSON:
    media: JSON = {"schema": schema}
    if examples:
        media["examples"] = _examples(examples)
    return {"description": description, "content": {"application/json": media}}


def error(
    description: str, message: str, fields: dict[str, str] | None = None, schema: str = "Error"
) -> JSON:
    """A 4xx answer: `{"error": message, "fields": {name: problem}}`, with one example."""
    example: JSON = {"error": message, "fields": fields or {}}
    return json_response(description, ref(schema), {"example": example})


def query(name: str, description: str, schema: JSON, example: Any = None, *, required: bool = False) -> JSON:
    parameter: JSON = {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }
    if example is not None:
        parameter["example"] = example
    return parameter


def path_id(name: str, description: str, example: int) -> JSON:
    """A numeric id in the path: larger than BIGINT is nobody's id, so the route does not match (404)."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807},
        "example": example,
    }


def _examples(examples: dict[str, Any]) -> JSON:
    return {name: {"value": value} for name, value in examples.items()}


UNAUTHORIZED_PUBLISHER = error(
    "The bearer token is missing or not valid (a publisher's `pub_` or, where listed, a staff `stf_` token).",
    "Authorization: Bearer <publisher API token> is missing or not valid",
)
UNAUTHORIZED_ADVERTISER = error(
    "The API key is missing, malformed, unknown, or replaced and past its grace period (a deactivated "
    "advertiser's right key is a 403).",
    "Authorization: the API key is not valid (unknown, or replaced and past its grace period)",
)
UNAUTHORIZED_S2S = error(
    "The `token` query parameter is missing, unknown, or replaced and past its grace period (a "
    "deactivated advertiser's right token is a 403).",
    "token: the S2S token is not valid (unknown, or replaced and past its grace period)",
)
DEACTIVATED_ADVERTISER = error(
    "The API key is right but the network has deactivated its advertiser (`flask deactivate-advertiser`).",
    "Authorization: the advertiser account is deactivated; ask the network to reactivate it",
)
DEACTIVATED_S2S = error(
    "The S2S token is right but the network has deactivated its advertiser.",
    "token: the advertiser account is deactivated; ask the network to reactivate it",
)
# Ids are BIGINT: a larger one matches no route, and the router may answer 405 rather than 404 when a
# neighbouring route has other methods (dispatcher/web/converters.py).
BEYOND_BIGINT = error(
    "The id is beyond BIGINT, so no route matches it; the router answers 405 here.",
    "The method is not allowed for the requested URL.",
)


# An empty query parameter (`?status=`, as an HTML form sends it) is no filter.
BLANK: JSON = {"type": "string", "maxLength": 0}
ID_OR_BLANK: JSON = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 9223372036854775807}, BLANK]}
