"""A brief run of the delivery bench, as its users run it: every scenario, every figure, nothing sent twice,
and each run's worker processes warmed up before its clock starts."""

from __future__ import annotations

import re

import pytest

from tests.bench.conftest import RunBench

FIGURES = [
    "delivery_vs_raw",
    "delivery_100ms_per_s",
    "delivery_100ms_capped_per_s",
    "mix_fast_p99_ms",
    "all_fast_p99_ms",
    "mix_p99_vs_all_fast",
    "isolation_ratio",
]
RUN = re.compile(
    r"^  (\d+) sales \((\d+) to healthy endpoints, .*; (\d+) sent before, to warm the workers up\)"
)


@pytest.mark.postgres
@pytest.mark.processes
def test_a_brief_run_prints_every_figure_of_warmed_up_runs(run_bench: RunBench) -> None:
    lines = run_bench(
        "bench.delivery", "postgres", "--sales", "400", "--slow-sales", "300", "--mix-seconds", "1"
    )

    figures = [line.split(": ") for line in lines[-len(FIGURES) :]]
    assert [name for name, _ in figures] == FIGURES
    assert all(float(value) > 0 for _, value in figures)
    runs = [RUN.match(line) for line in lines if line.startswith("  ") and " sales (" in line]
    # The fast sink, 100 ms on 40 hosts and on 20, then isolation's six.
    assert len(runs) == 9 and all(runs), lines
    assert [int(run.group(1)) for run in runs if run] == [400, 300, 300, *[300] * 6]
    assert [int(run.group(2)) for run in runs if run][-6:] == [300, 240, 240, 300, 300, 240]
    # Every run was warmed up: at least a delivery for each of its 2 worker processes.
    assert all(int(run.group(3)) >= 2 for run in runs if run)
    assert all(line.endswith("duplicates 0") for line in lines if " sales (" in line)
