"""The dashboard (`/support`): activity charts, trouble spots, queues and paused postbacks."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from dispatcher.db import request_session
from dispatcher.support import charts
from dispatcher.support import dashboard as figures
from dispatcher.web.support.common import blueprint, redis_client, staff_required


@blueprint.get("/")
@staff_required
def dashboard() -> ResponseReturnValue:
    board = figures.build(request_session(), redis_client())
    times = [bucket.start for bucket in board.buckets]
    rates = [bucket.success_rate for bucket in board.buckets]
    graphs = [
        charts.line_chart("Attempts per minute", "/min", times, [b.per_minute for b in board.buckets]),
        charts.line_chart(
            "Success rate", "%", times, [None if r is None else 100 * r for r in rates], y_max=100
        ),
        charts.line_chart("Latency p50", "ms", times, [b.p50_ms for b in board.buckets]),
        charts.line_chart("Latency p95", "ms", times, [b.p95_ms for b in board.buckets]),
    ]
    return render_template("support/dashboard.html", board=board, graphs=graphs)
