"""The development demo: seeding, the demo receiver, and `python app.py` (what `make run` starts)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from dispatcher import config, demo
from dispatcher.db import get_db
from dispatcher.models import Postback, Publisher, StaffUser, TrafficSource
from dispatcher.redis_server import STATE_FILE, free_port
from tests.conftest import app_settings

ROOT = Path(__file__).resolve().parents[2]


def test_seed_fills_an_empty_database_once(app: Flask) -> None:
    with get_db(app).session() as session:
        first = demo.seed(session, "http://127.0.0.1:5000")
    with get_db(app).session() as session:
        second = demo.seed(session, "http://127.0.0.1:5000")
        counts = [session.scalar(select(func.count()).select_from(model)) for model in (Publisher, StaffUser)]
        sources = session.scalars(select(TrafficSource.name).order_by(TrafficSource.name)).all()
        postback = session.scalars(select(Postback)).one()

    assert first.seeded and not second.seeded
    assert counts == [1, 1]
    assert sources == ["Blog", "Newsletter"]
    assert postback.url_template == "http://127.0.0.1:5000" + demo.DEMO_POSTBACK_PATH
    assert first.details["publisher"]["api_token"].startswith("pub_")


def test_the_demo_receiver_records_and_shows_what_it_receives_escaped(client: FlaskClient) -> None:
    hostile = "<script>alert(1)</script>"

    received = client.get("/demo/receiver", query_string={"sid": hostile, "order": "A-1"})
    posted = client.post("/demo/receiver", data="amount=1.00")
    page = client.get("/demo/receipts")

    assert received.status_code == posted.status_code == 200
    assert hostile.encode() not in page.data
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page.data
    assert b"amount=1.00" in page.data


def test_demo_routes_exist_only_in_demo_mode(tmp_path: Path, sqlite_url: str, redis_url: str) -> None:
    app = create_app(app_settings(tmp_path, sqlite_url, redis_url))

    assert app.test_client().get("/demo/receiver").status_code == 404


def _clean_env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in config.KNOWN_KEYS}
    # As `make run` runs the commands before `python app.py`: as a development run.
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), DEMO_MODE="1", PORT=str(port))
    env["DISPATCHER_ENV"] = "development"
    env["POSTBACK_ALLOWED_NETWORKS"] = "127.0.0.0/8"
    return env


def _wait_for(url: str, process: subprocess.Popen[str], seconds: float = 30) -> requests.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {seconds} s")


def _migrated_env(tmp_path: Path) -> tuple[int, dict[str, str]]:
    """A free port and the environment of a development run on it, its database migrated."""
    port = free_port()
    env = _clean_env(tmp_path, port)
    flask = [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"]
    subprocess.run(flask, cwd=ROOT, env=env, check=True, timeout=60)
    return port, env


@pytest.mark.processes
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_the_development_run_serves_with_an_embedded_redis_and_stops_it_on_exit(
    tmp_path: Path, stop: signal.Signals
) -> None:
    port, env = _migrated_env(tmp_path)
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    seeded = subprocess.run(
        [*flask, "seed-demo", "--base-url", f"http://127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert json.loads(seeded.stdout)["seeded"] is True

    # As from a terminal: SIGINT at its default. A suite started in the background by a non-interactive
    # shell ignores SIGINT, and an ignored signal is inherited by a child (a handler is not): app.py would
    # then never see the Ctrl-C.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=ROOT,
            # No DISPATCHER_ENV: `python app.py` is a development run by itself, so are its worker and pump.
            env={key: value for key, value in env.items() if key != "DISPATCHER_ENV"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        health = _wait_for(f"http://127.0.0.1:{port}/healthz", process)
        assert health.status_code == 200, health.text
        assert health.json()["checks"] == {"database": "ok", "redis": "ok"}
        redis_pid = json.loads((tmp_path / "instance" / "redis" / STATE_FILE).read_text())["pid"]
        landing = requests.get(f"http://127.0.0.1:{port}/demo/landing?clickid=abc", timeout=5)
        assert "abc" in landing.text
    finally:
        process.send_signal(stop)
        output, _ = process.communicate(timeout=30)

    assert process.returncode == 0, output
    assert "Error:" not in output  # the worker and the pump started too, without REDIS_URL or SECRET_KEY
    assert f"http://127.0.0.1:{port}/" in output
    assert demo.DEMO_PUBLISHER_EMAIL in output
    assert not Path(f"/proc/{redis_pid}").exists()


def _running_in_session(session: int) -> set[int]:
    """The processes of a session still running (a zombie only waits for its parent to read its status)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command, which may hold spaces
        except OSError:
            continue  # it exited while we looked
        state, session_id = fields[0], int(fields[3])
        if session_id == session and state != "Z":
            found.add(int(stat.parent.name))
    return found


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.processes
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_signal_to_the_background_development_run_alone_stops_everything_it_started(
    tmp_path: Path, stop: signal.Signals
) -> None:
    port, env = _migrated_env(tmp_path)
    # As `make run &` from a script: a background job of a non-interactive shell starts with SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with (tmp_path / "output.log").open("w") as output:  # a file: a child left running keeps a pipe open
            process = subprocess.Popen(
                [sys.executable, "app.py"],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,  # its own process group: the signal reaches app.py alone
            )
    finally:
        signal.signal(signal.SIGINT, previous)
    redis_pid = 0
    try:
        assert _wait_for(f"http://127.0.0.1:{port}/healthz", process).status_code == 200
        redis_pid = json.loads((tmp_path / "instance" / "redis" / STATE_FILE).read_text())["pid"]
        assert len(_running_in_session(process.pid) - {process.pid}) == 2  # the worker and the pump

        os.kill(process.pid, stop)

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answering = _answers(port)
            remaining = _running_in_session(process.pid) | _running_in_session(redis_pid)
            if not answering and not remaining:
                break
            time.sleep(0.2)
        assert not answering, "the web server still answers"
        assert not remaining, f"still running: {remaining}"
        assert process.wait(timeout=5) == 0, (tmp_path / "output.log").read_text()
    finally:
        # Nothing left behind by a failure: the process group (app.py, worker, pump) and the Redis session.
        for session in (process.pid, redis_pid):
            if session and _running_in_session(session):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(session, signal.SIGKILL)  # its leader's group: the whole session here
        process.wait(timeout=10)
