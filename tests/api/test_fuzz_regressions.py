"""Requests the API fuzzing led to, kept as plain regression tests."""

from __future__ import annotations

import pytest

from tests.api.spec_checks import response_problems
from tests.api.world import World


@pytest.mark.parametrize("name", ["postback_id", "before"])
def test_a_publisher_filter_id_beyond_bigint_is_a_400_naming_it(world: World, name: str) -> None:
    # Was a 500: SQLite's OverflowError, PostgreSQL's "bigint out of range".
    response = world.client.get(
        f"/api/v1/deliveries?{name}=99999999999999999999", headers=world.auth(world.publisher_token)
    )
    assert response.status_code == 400
    assert response.get_json()["fields"] == {name: "is not an id (too large)"}
    assert response_problems("GET", "/api/v1/deliveries", response) == []
