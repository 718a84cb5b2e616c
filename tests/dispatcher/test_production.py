"""Development vs production: outside a development run (DISPATCHER_ENV=development: `make run`, `python
app.py`, tests that say so) a process without REDIS_URL or SECRET_KEY refuses to start with one line naming
the variable, never a private Redis or a secret key of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from dispatcher import config
from dispatcher.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-secret-key-that-is-long-enough"


def production_settings(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    return {"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True, **settings}


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"SECRET_KEY": SECRET}, "REDIS_URL is not set"),
        ({"REDIS_URL": "redis://127.0.0.1:6379/0"}, "SECRET_KEY is not set"),
        ({}, "REDIS_URL and SECRET_KEY are not set"),
        ({"DISPATCHER_ENV": "production", "SECRET_KEY": SECRET}, "REDIS_URL is not set"),
    ],
)
def test_the_app_factory_outside_development_refuses_without_redis_url_or_secret_key(
    tmp_path: Path, given: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        create_app(production_settings(tmp_path, **given))

    message = str(refused.value)
    assert message.startswith(named)
    assert "\n" not in message
    assert "DISPATCHER_ENV=development" in message
    assert not (tmp_path / "instance" / "secret_key").exists()  # no per-host secret made up


def test_a_development_run_has_an_embedded_redis_and_a_generated_secret_key(tmp_path: Path) -> None:
    app = create_app(production_settings(tmp_path, DISPATCHER_ENV="development"))

    settings = app.extensions["dispatcher.settings"]
    assert settings.development and settings.embedded_redis
    assert app.config["SECRET_KEY"] == (tmp_path / "instance" / "secret_key").read_text().strip()


def test_an_unknown_environment_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="DISPATCHER_ENV must be one of production, development, got 'staging'"
    ):
        config.from_env({"DISPATCHER_ENV": "staging", "INSTANCE_PATH": str(tmp_path)})


def test_a_bad_value_is_named_before_a_missing_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^DATABASE_URL must be"):
        config.from_env({"DATABASE_URL": "mysql://x/y", "INSTANCE_PATH": str(tmp_path)})


def process_env(tmp_path: Path, database_url: str, **settings: str) -> dict[str, str]:
    """This process's environment without any of the service's settings, plus `settings`."""
    env = {key: value for key, value in os.environ.items() if key not in config.KNOWN_KEYS}
    env.update(DATABASE_URL=database_url, INSTANCE_PATH=str(tmp_path / "instance"), **settings)
    return env


COMMANDS = {
    "flask worker": [sys.executable, "-m", "flask", "--app", "app", "worker", "--burst"],
    "flask pump": [sys.executable, "-m", "flask", "--app", "app", "pump", "--once"],
    "python -m workers.worker": [sys.executable, "-m", "workers.worker", "--burst"],
}


@pytest.mark.processes
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("missing", "given"),
    [("REDIS_URL", {"SECRET_KEY": SECRET}), ("SECRET_KEY", {"REDIS_URL": "redis://127.0.0.1:1/0"})],
)
def test_workers_and_pumps_outside_development_refuse_to_start_with_one_line(
    tmp_path: Path, sqlite_url: str, command: str, missing: str, given: dict[str, str]
) -> None:
    # --burst and --once: a command that wrongly started would end, and fail this test, rather than hang.
    done = subprocess.run(
        COMMANDS[command],
        cwd=ROOT,
        env=process_env(tmp_path, sqlite_url, **given),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # no traceback
    assert lines[0].startswith(f"Error: {missing} is not set: set {missing}=")


@pytest.mark.processes
def test_development_workers_and_pumps_start_without_redis_url_or_secret_key(
    tmp_path: Path, sqlite_url: str
) -> None:
    env = process_env(tmp_path, sqlite_url, DISPATCHER_ENV="development")

    pumped = subprocess.run(
        COMMANDS["flask pump"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    worked = subprocess.run(
        COMMANDS["flask worker"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert pumped.returncode == 0, pumped.stderr
    assert json.loads(pumped.stdout) == {"first": 0, "retry": 0}
    assert worked.returncode == 0, worked.stderr
    assert (tmp_path / "instance" / "secret_key").exists()
    assert (tmp_path / "instance" / "redis").is_dir()  # the embedded server's data
