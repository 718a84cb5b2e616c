"""The per-job CPU bench, briefly, on each database: it must settle every job it measures and print its
figures for each batch size."""

from __future__ import annotations

import re

import pytest

from tests.bench.conftest import DATABASES, RunBench


@pytest.mark.processes
@pytest.mark.parametrize("database", DATABASES)
def test_a_brief_run_prints_the_cost_of_a_job(run_bench: RunBench, database: str) -> None:
    lines = run_bench("bench.jobs", database, BENCH_JOBS="5")

    text = "\n".join(lines)
    assert re.search(r"rq SimpleWorker, a job that does nothing: \d+\.\d\d ms CPU per job", text), lines
    assert re.search(r"our worker \(workers.worker.QueueWorker\), the same: \d+\.\d\d ms CPU per job", text)
    for size in (1, 5, 20):
        assert re.search(rf"engine, {size} deliveries per job: \d+\.\d\d ms CPU per job", text), lines
    assert re.fullmatch(r"engine_job_vs_rq_job: \d+\.\d\d", lines[-1]), lines
