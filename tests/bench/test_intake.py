"""The intake bench's apps and closing lines (the app with and without its fast path, the ratios' order),
and a brief run of it on each database, which must end with its figure."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask

from bench._in_process import PerSale, report
from bench.intake import bench_app, ratios
from dispatcher.db import get_db
from dispatcher.web.access_log import AccessLog
from dispatcher.web.fast_path import FastPath
from tests.bench.conftest import DATABASES, RunBench
from tests.conftest import app_settings
from tests.dispatcher import factories


def test_the_bench_app_answers_clicks_in_front_of_flask_unless_told_not_to(
    tmp_path: Path, sqlite_url: str, redis_url: str
) -> None:
    settings = app_settings(tmp_path, sqlite_url, redis_url)
    fast, plain = bench_app(settings=settings), bench_app(fast_path=False, settings=settings)

    assert isinstance(fast.wsgi_app, AccessLog) and isinstance(plain.wsgi_app, AccessLog)
    assert isinstance(fast.wsgi_app.app, FastPath)
    assert not isinstance(plain.wsgi_app.app, FastPath)
    assert plain.test_client().get("/hello").text == "hello"
    assert answers_a_click(plain) and answers_a_click(fast)
    for app in (fast, plain):
        get_db(app).dispose()


def answers_a_click(app: Flask) -> bool:
    with get_db(app).session() as session:
        owner = factories.publisher(session)
        source = factories.traffic_source(session, owner)
        shop = factories.program(session)
    response = app.test_client().get(f"/c/{shop.id}?pub={owner.id}&ts={source.id}")
    return response.status_code == 302


def test_the_fast_path_cannot_be_taken_out_from_under_proxy_fix(
    tmp_path: Path, sqlite_url: str, redis_url: str
) -> None:
    with pytest.raises(RuntimeError, match="TRUSTED_PROXIES"):
        bench_app(fast_path=False, settings=app_settings(tmp_path, sqlite_url, redis_url, TRUSTED_PROXIES=1))


RATES = {"hello": 1000.0, "click": 900.0, "click_flask": 600.0, "ingest": 500.0, "ingest_flask": 400.0}


def test_the_last_lines_are_ours_over_bare_click_then_sale() -> None:
    lines = ratios({**RATES, "click_bare": 1000.0, "ingest_bare": 625.0})

    assert lines[-2:] == ["click_vs_bare: 0.90", "ingest_vs_bare: 0.80"]
    assert "click fast path gain: x1.50" in lines and "sale fast path gain: x1.25" in lines


def test_the_in_process_lines_name_each_app_and_compare_the_fast_path_with_flask() -> None:
    figures = {"app": PerSale(800, 1800), "flask": PerSale(1000, 2000), "bare": PerSale(700, 1700)}

    lines = report(figures, 1000)

    assert lines[0] == "in-process sale (app, best of rounds of 1000): 800 us CPU of its thread, 1800 us wall"
    assert lines[2].startswith("in-process sale (bare, ")
    assert lines[-1] == "in-process sale fast path: CPU x0.80, wall x0.90"


def test_without_a_bare_app_the_last_lines_are_ours_over_hello() -> None:
    lines = ratios(RATES)

    assert lines[-2:] == ["click_vs_hello: 0.90", "ingest_vs_hello: 0.50"]
    assert any("bare: not measured" in line for line in lines)


@pytest.mark.processes
@pytest.mark.parametrize("database", DATABASES)
def test_a_brief_run_ends_with_ours_over_the_baseline(run_bench: RunBench, database: str) -> None:
    lines = run_bench(
        "bench.intake",
        database,
        BENCH_SECONDS="1",
        BENCH_ROUNDS="1",
        BENCH_GENERATOR="python",
        BENCH_IN_PROCESS_SALES="5",
    )

    last = "ingest_vs_hello" if database == "sqlite" else "ingest_vs_bare"
    apps = ["app", "flask"] if database == "sqlite" else ["app", "flask", "bare"]
    for app in apps:  # each answered its sales in the bench's own process first (bench._in_process)
        assert [line for line in lines if line.startswith(f"in-process sale ({app}, best of rounds of 5): ")]
    fast_path = r"in-process sale fast path: CPU x[\d.]+, wall x[\d.]+"
    assert [line for line in lines if re.fullmatch(fast_path, line)], lines
    assert re.fullmatch(rf"{last}: \d+\.\d\d", lines[-1]), lines
    assert not [line for line in lines if "unexpected responses" in line], lines
