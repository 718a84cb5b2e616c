"""URL converters. Ids in paths are BIGINT: a larger number is nobody's, so the route simply does not match
(404) instead of reaching the database, where PostgreSQL refuses to compare a BIGINT with it."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

from dispatcher.models.types import MAX_ID


class IdConverter(IntegerConverter):
    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def init_app(app: Flask) -> None:
    """Every `<int:...>` in the app is bounded; call before registering blueprints."""
    app.url_map.converters["int"] = IdConverter
