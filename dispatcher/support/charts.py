"""Line charts as numbers for an inline SVG drawn by a Jinja macro: no script, no CDN, CSP-safe."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

WIDTH, HEIGHT = 720, 160
LEFT, BOTTOM, TOP = 48, 22, 10


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    points: str  # "x,y x,y ..." for <polyline>, gaps (no data) skipped
    dots: list[tuple[float, float, str]]  # x, y, tooltip
    y_max: float
    y_ticks: list[tuple[float, str]]  # y position, label
    x_ticks: list[tuple[float, str]]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = HEIGHT - BOTTOM
    empty: bool = False


def line_chart(
    title: str,
    unit: str,
    times: Sequence[datetime],
    values: Sequence[float | None],
    *,
    y_max: float | None = None,
) -> Chart:
    known = [value for value in values if value is not None]
    top = y_max if y_max is not None else nice_ceiling(max(known, default=0.0))
    top = top if top > 0 else 1.0
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    step = plot_w / max(1, len(values) - 1)

    def x(i: int) -> float:
        return round(LEFT + i * step, 1)

    def y(value: float) -> float:
        return round(TOP + plot_h * (1 - value / top), 1)

    dots = [
        (x(i), y(value), f"{times[i]:%H:%M} UTC: {_label(value)} {unit}")
        for i, value in enumerate(values)
        if value is not None
    ]
    # Round numbers, the unit on the top one: "0", "100", "200 ms" rather than "0.77, 1.53".
    y_ticks = [(y(top * share), _label(top * share)) for share in (0, 0.5, 1)]
    joined = "" if unit.startswith(("/", "%")) else " "
    y_ticks[-1] = (y_ticks[-1][0], f"{y_ticks[-1][1]}{joined}{unit}")
    x_ticks = [(x(i), f"{times[i]:%H:%M}") for i in range(0, len(times), max(1, len(times) // 6))]
    return Chart(
        title,
        unit,
        " ".join(f"{px},{py}" for px, py, _ in dots),
        dots,
        top,
        y_ticks,
        x_ticks,
        empty=not known,
    )


# Tops whose half is round too, so all three ticks read well.
_NICE = (1.0, 2.0, 4.0, 5.0, 10.0)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 4, 5 x 10^k at or above `value` (0 stays 0)."""
    if value <= 0:
        return 0.0
    scale = 10.0 ** math.floor(math.log10(value))
    return next(nice * scale for nice in _NICE if nice * scale >= value * (1 - 1e-9))


def _label(value: float) -> str:
    if value >= 10 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")
