"""Ids beyond BIGINT in any path are nobody's: the route does not match, and nothing reaches the database."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dispatcher import accounts
from dispatcher.db import get_db
from dispatcher.web.converters import IdConverter

HUGE = str(2**64)


def _paths_with_ids(app: Flask) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if not any(isinstance(converter, IdConverter) for converter in rule._converters.values()):
            continue
        path = re.sub(r"<[^>]+>", HUGE, rule.rule)
        routes += [(method, path) for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    return routes


def test_every_int_route_uses_the_bounded_converter(app: Flask) -> None:
    assert len(_paths_with_ids(app)) >= 10


@pytest.mark.parametrize("who", ["anonymous", "publisher"])
def test_an_id_beyond_bigint_is_refused_by_every_route(app: Flask, client: FlaskClient, who: str) -> None:
    headers = {}
    if who == "publisher":
        with get_db(app).session() as session:
            token = accounts.create_publisher(session, "P", "p@x.test", "password1").api_token
        headers["Authorization"] = f"Bearer {token}"

    answers = {
        (method, path): client.open(path, method=method, headers=headers).status_code
        for method, path in _paths_with_ids(app)
    }

    # 405 where werkzeug finds the path under other methods; never a 500 from the database.
    assert {key: status for key, status in answers.items() if status not in (404, 405)} == {}
    assert answers[("GET", f"/api/v1/deliveries/{HUGE}")] == 404
