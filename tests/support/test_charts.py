"""Dashboard charts: round tick values, the unit on the top tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.support.charts import line_chart, nice_ceiling

TIMES = [datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=10 * i) for i in range(4)]


@pytest.mark.parametrize(
    ("value", "top"),
    [(0.77, 1.0), (1.53, 2.0), (6.95, 10.0), (3.2, 4.0), (140.0, 200.0), (401.0, 500.0), (1000.0, 1000.0)],
)
def test_the_top_of_the_axis_is_a_round_number(value: float, top: float) -> None:
    assert nice_ceiling(value) == pytest.approx(top)


def test_ticks_are_round_and_the_top_one_names_the_unit() -> None:
    latency = line_chart("Latency p50", "ms", TIMES, [12.0, 140.0, None, 75.5])
    assert [label for _, label in latency.y_ticks] == ["0", "100", "200 ms"]
    rate = line_chart("Attempts per minute", "/min", TIMES, [0.2, 0.77, 0.5, None])
    assert [label for _, label in rate.y_ticks] == ["0", "0.5", "1/min"]
    success = line_chart("Success rate", "%", TIMES, [99.0, 100.0, 97.5, 98.0], y_max=100)
    assert [label for _, label in success.y_ticks] == ["0", "50", "100%"]
