"""The retention bench, briefly, on PostgreSQL (what it measures is PostgreSQL's sizes): it prunes what is
old, times sales beside the prune and prints the bytes per delivery kept."""

from __future__ import annotations

import re

import pytest

from tests.bench.conftest import RunBench


@pytest.mark.processes
@pytest.mark.postgres
def test_a_brief_run_prunes_the_old_deliveries_and_prints_the_bytes_per_delivery(run_bench: RunBench) -> None:
    lines = run_bench(
        "bench.retention", "postgres", BENCH_OLD="3000", BENCH_KEPT="1000", BENCH_BASELINE_S="0.5"
    )

    text = "\n".join(lines)
    # 3,000 old ones, of which as many failed for good (kept) as the recent ones fail: 1% of 1,000.
    assert re.search(r"^prune: 2990 deliveries deleted and \d+ excerpts cleared in ", text, re.M), lines
    assert re.search(r"^intake during prune: +\d+ sales, p50 [\d.]+ ms, .* max [\d.]+ ms$", text, re.M), lines
    [compacted] = [line for line in lines if line.startswith("compacted (VACUUM FULL")]
    assert compacted.startswith("compacted (VACUUM FULL: steady state): 1010 deliveries"), compacted
    assert "deliveries.ix_deliveries_state_created_at" in text and "attempt row, answer cleared" in text
    assert re.fullmatch(r"bytes_per_delivery: \d+", lines[-1]), lines
