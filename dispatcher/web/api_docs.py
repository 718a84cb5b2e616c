"""GET /api/openapi.json (the OpenAPI 3.1 document) and GET /api/docs (the same, as a page).

The page is rendered on the server from the document with Jinja, autoescaped: no CDN, no script, so it works
under the pages' CSP and shows what the document says, not what a viewer library makes of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, render_template
from flask.typing import ResponseReturnValue

from dispatcher.api_spec import document
from dispatcher.api_spec.common import JSON
from dispatcher.web import pages

blueprint = Blueprint("api_docs", __name__, url_prefix="/api")
pages.protect(blueprint)  # the pages' CSP and security headers (GET only: CSRF never applies)
METHODS = ("get", "put", "post", "delete", "patch")
SCHEMA_PREFIX = "#/components/schemas/"


@blueprint.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    # json.dumps keeps the document's order (paths grouped as written); jsonify would sort the keys.
    return Response(json.dumps(document()), mimetype="application/json")


@blueprint.get("/docs")
def docs() -> ResponseReturnValue:
    spec = document()
    return render_template(
        "api_docs.html",
        info=spec["info"],
        tags=_tags(spec),
        schemes=spec["components"]["securitySchemes"],
        schemas=[Shown(json.dumps(schema, indent=2), _refs(schema), name) for name, schema in
                 spec["components"]["schemas"].items()],
    )  # fmt: skip


@dataclass(frozen=True)
class Shown:
    """A schema or example as indented JSON, with the named schemas it refers to (to link them)."""

    text: str
    refs: list[str] = field(default_factory=list)
    name: str = ""


@dataclass(frozen=True)
class Media:
    media_type: str
    schema: Shown | None
    examples: list[Shown]


@dataclass(frozen=True)
class Operation:
    anchor: str
    method: str
    path: str
    summary: str
    description: str
    security: list[str]
    parameters: list[JSON]
    body: list[Media]
    body_required: bool
    responses: list[tuple[str, str, list[Media], JSON]]


@dataclass
class Tag:
    name: str
    description: str
    operations: list[Operation] = field(default_factory=list)


def _tags(spec: JSON) -> list[Tag]:
    tags = {tag["name"]: Tag(tag["name"], tag.get("description", "")) for tag in spec.get("tags", [])}
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method in item:
                operation = _operation(path, method, item[method], shared)
                name = (item[method].get("tags") or ["Other"])[0]
                tags.setdefault(name, Tag(name, "")).operations.append(operation)
    return [tag for tag in tags.values() if tag.operations]


def _operation(path: str, method: str, found: JSON, shared: list[JSON]) -> Operation:
    body = found.get("requestBody", {})
    return Operation(
        anchor=found.get("operationId", f"{method}-{path}"),
        method=method.upper(),
        path=path,
        summary=found.get("summary", ""),
        description=found.get("description", ""),
        security=[" or ".join(requirement) or "none" for requirement in found.get("security", [])],
        parameters=[{**parameter, "shown": _shown(parameter["schema"])} for parameter in [*shared,
                    *found.get("parameters", [])]],
        body=_media(body.get("content", {})),
        body_required=bool(body.get("required")),
        responses=[
            (status, response.get("description", ""), _media(response.get("content", {})),
             response.get("headers", {}))
            for status, response in found["responses"].items()
        ],
    )  # fmt: skip


def _media(content: JSON) -> list[Media]:
    shown = []
    for media_type, media in content.items():
        examples = [
            Shown(json.dumps(example["value"], indent=2), name=name)
            for name, example in media.get("examples", {}).items()
        ]
        if "example" in media:
            examples.append(Shown(_text(media["example"]), name="example"))
        schema = media.get("schema")
        shown.append(Media(media_type, _shown(schema) if schema is not None else None, examples))
    return shown


def _shown(schema: JSON) -> Shown:
    return Shown(json.dumps(schema, indent=2), _refs(schema))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2)


def _refs(node: Any) -> list[str]:
    """Names of the schemas `node` refers to, each once, in order of appearance."""
    return list(dict.fromkeys(_walk_refs(node)))


def _walk_refs(node: Any) -> list[str]:
    if isinstance(node, list):
        return [name for value in node for name in _walk_refs(value)]
    if not isinstance(node, dict):
        return []
    target = node.get("$ref")
    own = [target.removeprefix(SCHEMA_PREFIX)] if isinstance(target, str) else []
    return own + [name for value in node.values() for name in _walk_refs(value)]
