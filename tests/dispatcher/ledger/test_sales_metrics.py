"""Sales are counted by the process that records them, by channel, and served at /metrics (this process's
registry: no PROMETHEUS_MULTIPROC_DIR in tests); a duplicate report is not a sale."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dispatcher import instruments
from tests.dispatcher.ledger.conftest import Network


def _sales(network: Network) -> dict[str, float]:
    response = network.client.get("/metrics")
    assert response.status_code == 200
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        if family.name == "postback_sales_recorded":
            assert family.type == "counter"
            for sample in family.samples:
                if sample.name == "postback_sales_recorded_total":
                    found[sample.labels["channel"]] = sample.value
    return found


def test_each_new_sale_counts_once_under_its_channel_and_a_duplicate_not_at_all(network: Network) -> None:
    before = _sales(network)
    recorded = {"click_id": network.click(), "order_number": "M-1", "sale_amount": "10.00"}

    assert network.report(recorded).status_code == 201
    assert network.report(recorded).status_code == 200  # the same order again: a duplicate
    s2s = {"token": network.s2s_token, "clickid": network.click(), "on": "M-2", "sa": "5.00"}
    assert network.client.get("/s2s/transaction", query_string=s2s).status_code == 201

    after = _sales(network)
    assert after["api"] - before.get("api", 0) == 1
    assert after["s2s"] - before.get("s2s", 0) == 1


def test_a_failure_to_count_never_fails_a_recorded_sale(
    network: Network, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*labels: str) -> object:
        raise FileNotFoundError("the metrics directory is gone")

    monkeypatch.setattr(instruments.SALES, "labels", broken)
    monkeypatch.setattr(instruments._Failures, "logged", False)
    sale = {"click_id": network.click(), "order_number": "M-3", "sale_amount": "10.00"}

    assert network.report(sale).status_code == 201
    assert network.report(sale).status_code == 200  # it was recorded: the same order is now a duplicate
    assert "could not record metrics" in caplog.text
