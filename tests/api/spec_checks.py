"""Checking JSON against the OpenAPI document's schemas (JSON Schema 2020-12, as OpenAPI 3.1 says)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from werkzeug.test import TestResponse

from dispatcher.api_spec import document

SPEC = document()
METHODS = ("get", "put", "post", "delete", "patch")


def schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """Every way `instance` misses `schema`; `#/components/...` references resolve inside the document."""
    rooted = {**schema, "components": SPEC["components"]}
    validator = Draft202012Validator(rooted, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}" for error in
            validator.iter_errors(instance)]  # fmt: skip


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def operation(method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = SPEC["paths"][path][method.lower()]
    return found


def response_problems(method: str, path: str, response: TestResponse) -> list[str]:
    """How a real answer differs from what the document promises for its status."""
    documented = operation(method, path)["responses"].get(str(response.status_code))
    if documented is None:
        return [f"status {response.status_code} is not documented for {method} {path}"]
    content = documented.get("content")
    if not content:
        if response.status_code == 204 and response.get_data():
            return ["a 204 has a body"]
        missing = [name for name in documented.get("headers", {}) if name not in response.headers]
        return [f"header {name} is missing" for name in missing]
    if response.mimetype not in content:
        return [f"content type {response.mimetype} is not one of {sorted(content)}"]
    if response.mimetype != "application/json":
        return []
    body = response.get_json(silent=True)
    if body is None:
        return ["the body is not JSON"]
    return schema_errors(content["application/json"]["schema"], body)
