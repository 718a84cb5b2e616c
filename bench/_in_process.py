"""A reported sale's cost inside one process: the app, the app without its fast path, and the bare app.

Under gunicorn, the intake's ratios move by +-0.15 between runs minutes apart (the machine is shared). Here
each app answers the same reported sales through its WSGI callable, in this process, one after another, and
the figures are the CPU of the calling thread and the wall time per sale: what the app itself costs, with no
load generator, sockets or scheduling between processes. The courier thread that hands deliveries to RQ is
not in the thread's CPU (it runs beside the request); the bare app's RPUSH is, as it is made in its request.
Rounds are interleaved, as in the gunicorn part, the apps' order turning each round (none always follows
another), and each app's lowest CPU and lowest wall time are kept, each from whichever round had it.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
WARM_UP = 50


@dataclass(frozen=True)
class PerSale:
    cpu_us: float  # CPU of the calling thread
    wall_us: float


def measure(
    apps: Mapping[str, Wsgi], seeded: Mapping[str, str], sales: int, rounds: int
) -> dict[str, PerSale]:
    """The lowest CPU and wall time of each app: `sales` new sales each round (after a warm-up), rounds
    interleaved, the apps' order turned by one each round."""
    best: dict[str, PerSale] = {}
    names = list(apps)
    for round_ in range(rounds):
        turn = round_ % len(names)
        for name in names[turn:] + names[:turn]:
            app = apps[name]
            environs = [_sale_environ(seeded, f"P{round_}-{name}-{n}") for n in range(WARM_UP + sales)]
            for environ in environs[:WARM_UP]:
                _answer(app, environ)
            gc.collect()
            cpu, wall = time.thread_time(), time.perf_counter()
            for environ in environs[WARM_UP:]:
                _answer(app, environ)
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            found = PerSale(cpu * 1e6 / sales, wall * 1e6 / sales)
            kept = best.get(name, found)
            best[name] = PerSale(min(kept.cpu_us, found.cpu_us), min(kept.wall_us, found.wall_us))
    return {name: best[name] for name in names}


def report(figures: Mapping[str, PerSale], sales: int) -> list[str]:
    lines = [
        f"in-process sale ({name}, best of rounds of {sales}): {each.cpu_us:.0f} us CPU of its thread, "
        f"{each.wall_us:.0f} us wall"
        for name, each in figures.items()
    ]
    if "app" in figures and "flask" in figures:
        app, flask = figures["app"], figures["flask"]
        cpu, wall = app.cpu_us / flask.cpu_us, app.wall_us / flask.wall_us
        lines.append(f"in-process sale fast path: CPU x{cpu:.2f}, wall x{wall:.2f}")
    return lines


def _sale_environ(seeded: Mapping[str, str], order: str) -> dict[str, Any]:
    body = json.dumps({"click_id": seeded["click"], "order_number": order, "sale_amount": "25.00"})
    builder = EnvironBuilder(
        path="/api/v1/transactions",
        method="POST",
        data=body,
        content_type="application/json",
        headers=Headers({"Authorization": f"Bearer {seeded['key']}"}),
    )
    environ: dict[str, Any] = builder.get_environ()
    return environ


def _answer(app: Wsgi, environ: dict[str, Any]) -> None:
    statuses: list[str] = []

    def start_response(status: str, _headers: Any, _exc_info: Any = None) -> None:
        statuses.append(status)

    body = b"".join(app(environ, start_response))
    if not statuses or not statuses[0].startswith("201"):
        raise SystemExit(f"in-process sale answered {statuses}: {body[:300]!r}")
