"""The Procfile's web process as an operator starts it (honcho, gunicorn with gunicorn.conf.py), in production
mode: it serves /livez and /readyz; without REDIS_URL it stops with one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
import requests

from dispatcher import config
from dispatcher.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # honcho, gunicorn and flask, as the Procfile names them
SECRET = "test-secret-key-that-is-long-enough"

pytestmark = pytest.mark.processes


def production_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """No DISPATCHER_ENV, none of this process's service settings; what `settings` gives."""
    env = {key: value for key, value in os.environ.items() if key not in config.KNOWN_KEYS}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        INSTANCE_PATH=str(tmp_path / "instance"),
        PORT=str(free_port()),
        WEB_CONCURRENCY="1",
        **settings,
    )
    return env


@pytest.fixture
def migrated(tmp_path: Path, redis_url: str) -> str:
    """A SQLite file migrated by the real command, as a deployment does before starting the web process."""
    url = f"sqlite:///{tmp_path / 'production.db'}"
    env = production_env(tmp_path, DATABASE_URL=url, REDIS_URL=redis_url, SECRET_KEY=SECRET)
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "app", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return url


def honcho(env: dict[str, str], *process: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "honcho"), "--procfile", "Procfile", "start", *process],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: whatever is left of it is ended with it
    )


@pytest.fixture
def stopped_after() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def answer(url: str, process: subprocess.Popen[str], seconds: float = 60) -> requests.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"honcho exited: {process.communicate()[0]}"
        with suppress(requests.ConnectionError):
            return requests.get(url, timeout=5)
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {seconds} s")


def web_lines(output: str) -> list[str]:
    """What the web process wrote, without honcho's `time web.1  | ` prefix."""
    return [line.split(" | ", 1)[1] for line in output.splitlines() if " web.1 " in line.split(" | ", 1)[0]]


def test_honcho_starts_the_procfile_s_web_process_in_production(
    tmp_path: Path, migrated: str, redis_url: str, stopped_after: list[subprocess.Popen[str]]
) -> None:
    env = production_env(
        tmp_path, DATABASE_URL=migrated, REDIS_URL=redis_url, SECRET_KEY=SECRET, LOG_FORMAT="json"
    )
    process = honcho(env, "web")
    stopped_after.append(process)
    base = f"http://127.0.0.1:{env['PORT']}"

    live = answer(f"{base}/livez?token=s2s-secret-in-a-query", process)
    ready = requests.get(f"{base}/readyz", timeout=10)
    process.send_signal(signal.SIGTERM)  # honcho passes it on; gunicorn stops gracefully
    output, _ = process.communicate(timeout=60)

    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 200, ready.text
    lines = [json.loads(line) for line in web_lines(output) if line.strip()]  # all JSON, gunicorn's too
    [access] = [line for line in lines if line["logger"] == "dispatcher.access" and line["path"] == "/livez"]
    assert (access["status"], access["request_id"]) == (200, live.headers["X-Request-ID"])
    assert "s2s-secret-in-a-query" not in output
    assert any(line["logger"] == "gunicorn.error" for line in lines)


def test_honcho_s_web_process_without_redis_url_stops_with_one_line(
    tmp_path: Path, migrated: str, stopped_after: list[subprocess.Popen[str]]
) -> None:
    process = honcho(production_env(tmp_path, DATABASE_URL=migrated, SECRET_KEY=SECRET), "web")
    stopped_after.append(process)

    output, _ = process.communicate(timeout=60)

    assert process.returncode != 0, output
    assert [line for line in web_lines(output) if line.strip()] == [
        "Error: REDIS_URL is not set: set REDIS_URL=redis://<host>:6379/0 (the Redis every process shares); "
        "or DISPATCHER_ENV=development for a development run (embedded Redis, a secret key generated under "
        "instance/)"
    ], output


@pytest.mark.parametrize(
    ("missing", "port", "named"),
    [
        ("SECRET_KEY", "8000", "Error: SECRET_KEY is not set: "),
        ("", "http", "Error: PORT must be a whole number above 0, got 'http'"),
    ],
)
def test_gunicorn_with_its_config_refuses_a_bad_environment_in_one_line(
    tmp_path: Path, redis_url: str, missing: str, port: str, named: str
) -> None:
    settings = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "REDIS_URL": redis_url,
        "SECRET_KEY": SECRET,
    }
    settings.pop(missing, None)
    env = {**production_env(tmp_path, **settings), "PORT": port}

    done = subprocess.run(
        [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "app:create_app()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(named), done.stderr
