"""Voluum, ClickFlare, FunnelFlux and Keitaro get a sale, its approval and its reversal in their own words.

Everything goes through the real system: postbacks registered with the publisher API as a publisher would
write them (the README's Recipes), a click through `GET /c/...`, the sale through `POST /api/v1/transactions`,
the changes through `POST /api/v1/transactions/<sales_id>/status`, and every postback sent by a real
`flask --app app worker --burst` process to the trackers in `receivers.py`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from dispatcher import accounts
from dispatcher.db import get_db
from tests.compat.receivers import Conversion, Trackers
from tests.workers.conftest import work_burst, worker_env

README = Path(__file__).resolve().parents[2] / "README.md"
TRACKERS = ("voluum", "clickflare", "funnelflux", "keitaro")
SPACE = re.compile(r"\s*")
DOMAIN = re.compile(r"^https://your-(?P<tracker>[a-z]+)-domain\.example/")


def readme_recipes() -> dict[str, list[dict[str, Any]]]:
    """The README's "Recipes" postbacks, as a publisher would paste them, by tracker."""
    text = README.read_text()
    section = text[text.index("\n## Recipes\n") : text.index("\n## Macros\n")]
    decoder = json.JSONDecoder()
    found: dict[str, list[dict[str, Any]]] = {}
    for block in re.findall(r"```json\n(.*?)```", section, re.DOTALL):
        position = SPACE.match(block).end()  # type: ignore[union-attr]
        while position < len(block):
            recipe, end = decoder.raw_decode(block, position)
            position = SPACE.match(block, end).end()  # type: ignore[union-attr]
            tracker = DOMAIN.match(recipe["url"])
            assert tracker, recipe["url"]
            found.setdefault(tracker["tracker"], []).append(recipe)
    return found


@dataclass
class Network:
    client: FlaskClient
    api_key: str
    publisher_token: str
    publisher_id: int
    program_id: int
    sources: dict[str, int]  # tracker name -> the traffic source it tracks

    def click(self, tracker: str, their_click_id: str) -> str:
        query = {"pub": self.publisher_id, "ts": self.sources[tracker], "fobs": their_click_id}
        response = self.client.get(f"/c/{self.program_id}", query_string=query)
        assert response.status_code == 302, response.data
        return parse_qs(urlsplit(response.headers["Location"]).query)["clickid"][0]

    def sale(self, click_id: str, order: str, amount: str, at: int) -> str:
        body = {"click_id": click_id, "order_number": order, "sale_amount": amount, "event_time": at}
        response = self.client.post("/api/v1/transactions", json=body, headers=self._advertiser())
        assert response.status_code == 201, response.json
        assert response.json["deliveries"] >= 1
        sales_id: str = response.json["sales_id"]
        return sales_id

    def change(self, sales_id: str, status: str) -> None:
        response = self.client.post(
            f"/api/v1/transactions/{sales_id}/status", json={"status": status}, headers=self._advertiser()
        )
        assert response.status_code == 200, response.json

    def register(self, tracker: str, recipe: dict[str, Any], base: str) -> None:
        """The recipe as pasted, with the tracker's domain pointing at its local stand-in."""
        url = DOMAIN.sub(f"{base}/{tracker}/", recipe["url"])
        body = {**recipe, "url": url, "traffic_source_ids": [self.sources[tracker]]}
        headers = {"Authorization": f"Bearer {self.publisher_token}"}
        response = self.client.post("/api/v1/postbacks", json=body, headers=headers)
        assert response.status_code == 201, response.json

    def _advertiser(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture
def trackers() -> Iterator[Trackers]:
    server = Trackers()
    yield server
    server.close()


@pytest.fixture
def network(app: Flask, client: FlaskClient, trackers: Trackers) -> Network:
    with get_db(app).session() as session:
        advertiser = accounts.create_advertiser(session, "Shoe Shop")
        program = accounts.create_program(
            session,
            advertiser.advertiser.id,
            "Shoes US",
            landing_url="https://shop.example/landing",
            commission="10%",
        )
        publisher = accounts.create_publisher(session, "Acme Media", "ops@acme.example", "long-password")
        sources = {
            name: accounts.create_traffic_source(session, publisher.publisher.id, name).id
            for name in TRACKERS
        }
        built = Network(
            client, advertiser.api_key, publisher.api_token, publisher.publisher.id, program.id, sources
        )
    for tracker, recipes in readme_recipes().items():
        for recipe in recipes:
            built.register(tracker, recipe, trackers.base)
    return built


def _deliver(app: Flask, redis_url: str, tmp_path: Path) -> None:
    work_burst(worker_env(get_db(app).url, redis_url, tmp_path))


def _seen(conversions: list[Conversion]) -> list[tuple[str, Decimal, str]]:
    return [(conversion.txid, conversion.payout, conversion.status) for conversion in conversions]


def test_a_sale_its_approval_and_its_reversal_reach_each_tracker_in_its_own_words(
    app: Flask, network: Network, trackers: Trackers, redis_url: str, tmp_path: Path
) -> None:
    redis.Redis.from_url(redis_url).flushdb()  # the suite's embedded Redis: no other test's jobs
    clicks = {tracker: network.click(tracker, f"{tracker}-click-1") for tracker in TRACKERS}
    sold_at = int(time.time()) + 1  # whole seconds, and not before the clicks
    sales = {name: network.sale(clicks[name], f"{name}-order", "100.00", sold_at) for name in TRACKERS}
    _deliver(app, redis_url, tmp_path)

    v, c, f, k = (sales[name] for name in TRACKERS)
    assert _seen(trackers.voluum.of("voluum-click-1")) == [(v, Decimal("10.00"), "converted")]
    assert _seen(trackers.clickflare.of("clickflare-click-1")) == [(c, Decimal("10.00"), "sale")]
    assert _seen(trackers.funnelflux.of("funnelflux-click-1")) == [(f, Decimal("0.01"), "pending")]
    assert trackers.funnelflux.of("funnelflux-click-1")[0].time == sold_at
    assert _seen(trackers.keitaro.of("keitaro-click-1")) == [(k, Decimal("10.00"), "lead")]

    for sales_id in sales.values():
        network.change(sales_id, "approved")
    _deliver(app, redis_url, tmp_path)

    assert _seen(trackers.voluum.of("voluum-click-1")) == [(v, Decimal("10.00"), "converted")]  # unchanged
    assert _seen(trackers.clickflare.of("clickflare-click-1")) == [(c, Decimal("10.00"), "sale")]
    assert _seen(trackers.funnelflux.of("funnelflux-click-1")) == [(f, Decimal("10.00"), "approved")]
    assert _seen(trackers.keitaro.of("keitaro-click-1")) == [(k, Decimal("10.00"), "sale")]

    for sales_id in sales.values():
        network.change(sales_id, "reversed")
    _deliver(app, redis_url, tmp_path)

    # Same cid and txid: the same conversion, its payout taken back; not a second conversion.
    assert _seen(trackers.voluum.of("voluum-click-1")) == [(v, Decimal("0"), "converted")]
    assert _seen(trackers.clickflare.of("clickflare-click-1")) == [(c, Decimal("0"), "refund")]
    assert trackers.funnelflux.of("funnelflux-click-1") == []  # a rejected conversion is deleted
    assert _seen(trackers.keitaro.of("keitaro-click-1")) == [(k, Decimal("10.00"), "rejected")]
    assert trackers.refused() == []
    assert len(trackers.hits) == 2 + 3 * 3  # Voluum does not subscribe to approvals: nothing to tell it


def test_the_readme_has_a_recipe_with_a_status_map_for_every_tracker_that_has_statuses() -> None:
    recipes = readme_recipes()

    assert sorted(recipes) == sorted(TRACKERS)
    assert [len(recipes[name]) for name in TRACKERS] == [2, 1, 1, 1]
    assert all(recipe["status_map"] for name in TRACKERS[1:] for recipe in recipes[name])
