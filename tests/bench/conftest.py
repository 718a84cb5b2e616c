"""Running a benchmark as its users do, briefly, on either database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import postgres_url_or_skip

ROOT = Path(__file__).resolve().parents[2]
# For the runs' tests: each bench on SQLite and on PostgreSQL (its default).
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

RunBench = Callable[..., list[str]]


@pytest.fixture
def run_bench() -> RunBench:
    """`run_bench(module, database, *arguments, **environment)`: its output's lines, once it has exited
    with 0."""

    def run(module: str, database: str, *arguments: str, **settings: str) -> list[str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("BENCH_")}
        env.update(settings)
        if database == "sqlite":
            env["BENCH_SQLITE"] = "1"
        else:
            env["BENCH_DATABASE_URL"] = postgres_url_or_skip()
        command = [sys.executable, "-m", module, *arguments]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.splitlines()

    return run
