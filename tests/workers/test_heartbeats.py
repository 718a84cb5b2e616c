"""The pump's heartbeat at each pass, and real worker and pump processes seen alive by /readyz and the
console, then not, once they stop or are killed."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from dispatcher import heartbeats
from dispatcher.db import Database
from dispatcher.heartbeats import PumpHeartbeat
from tests.support.conftest import make_staff, staff_log_in
from tests.workers.conftest import FAST, start_command, worker_env
from workers import pump


def test_each_pump_pass_renews_its_heartbeat_with_the_time_of_the_pass(
    database: Database, redis_client: redis.Redis
) -> None:
    beat = PumpHeartbeat(redis_client, ttl_s=30)

    pump.run(database, redis_client, FAST, once=True, heartbeat=beat)

    [seen] = heartbeats.read(redis_client).pumps
    assert seen.name == beat.name and seen.last_error is None and seen.last_pass_at is not None


def test_a_pump_whose_passes_fail_is_alive_and_names_the_failure(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    unreachable = Database(f"sqlite:///{tmp_path / 'no-such-directory' / 'db.sqlite'}")
    beat = PumpHeartbeat(redis_client, ttl_s=30)

    pump.run(unreachable, redis_client, FAST, once=True, heartbeat=beat)

    [seen] = heartbeats.read(redis_client).pumps
    assert (seen.last_error, seen.last_pass_at) == ("OperationalError", None)
    unreachable.dispose()


def test_a_pump_that_cannot_write_its_heartbeat_goes_on_passing(database: Database) -> None:
    nowhere = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    stop = threading.Event()
    passes: list[int] = []

    class Counting(PumpHeartbeat):
        def beat(self, *, passed: bool, error: str | None = None) -> None:
            passes.append(1)
            if len(passes) == 2:
                stop.set()
            super().beat(passed=passed, error=error)

    pump.run(database, nowhere, FAST, stop=stop, heartbeat=Counting(nowhere, ttl_s=30))

    assert len(passes) == 2  # the first failed heartbeat ended nothing


def _delivery(console: FlaskClient) -> dict[str, Any]:
    body = console.get("/readyz").json
    assert body is not None
    answer: dict[str, Any] = body["delivery"]
    return answer


def _wait_for(condition: Callable[[], bool], timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


@pytest.fixture
def processes(
    app: Flask, database_url: str, redis_url: str, tmp_path: Path
) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """A real `flask --app app worker` and `flask --app app pump` on the app's database and Redis; the pump's
    heartbeat lives 2 s (production: 30)."""
    env = worker_env(
        database_url,
        redis_url,
        tmp_path,
        POSTBACK_PUMP_INTERVAL_S="0.2",
        POSTBACK_PUMP_HEARTBEAT_TTL_S="2",
    )
    started = {"worker": start_command(env, "worker"), "pump": start_command(env, "pump")}
    yield started
    for process in started.values():  # whatever the test did to them: none may outlive it (shared Redis)
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


@pytest.mark.processes
def test_real_processes_are_alive_on_readyz_and_the_console_until_they_stop_or_are_killed(
    app: Flask, client: FlaskClient, processes: dict[str, subprocess.Popen[str]]
) -> None:
    staff_log_in(client, make_staff(app))
    worker, pump_process = processes["worker"], processes["pump"]

    _wait_for(lambda: _delivery(client)["status"] == "ok", 60, "worker and pump never seen alive")

    assert _delivery(client) == {"status": "ok", "workers": 1, "pumps": 1}
    page = client.get("/support/").get_data(as_text=True)
    workers = page.split('id="workers"')[1].split("</table>")[0]
    pumps = page.split('id="pumps"')[1].split("</table>")[0]
    assert f"<td>{worker.pid}</td><td>postbacks, postbacks-retry</td><td>idle</td>" in workers
    assert f"<td>{pump_process.pid}</td>" in pumps and "failed" not in pumps
    assert 'id="no-worker"' not in page and 'id="no-pump"' not in page

    worker.send_signal(signal.SIGTERM)  # a clean stop registers its death in rq at once
    assert worker.wait(timeout=30) == 0
    assert _delivery(client)["workers"] == 0
    assert 'id="no-worker"' in client.get("/support/").get_data(as_text=True)

    pump_process.kill()  # says nothing: its heartbeat expires 2 s after its last pass
    pump_process.wait(timeout=30)
    killed = time.monotonic()
    _wait_for(lambda: _delivery(client)["pumps"] == 0, 10, "a killed pump stayed alive")

    assert time.monotonic() - killed < 4
    assert _delivery(client) == {
        "status": "degraded",
        "workers": 0,
        "pumps": 0,
        "warnings": [
            "no worker alive: sales are recorded, their postbacks wait until a worker starts",
            "no pump alive: retries and lost jobs are not handed to the workers",
        ],
    }
    assert client.get("/readyz").status_code == 200  # still ready: sales are still recorded


@pytest.mark.processes
def test_a_pump_stopped_by_sigterm_removes_its_heartbeat_at_once(
    app: Flask, client: FlaskClient, processes: dict[str, subprocess.Popen[str]]
) -> None:
    _wait_for(lambda: _delivery(client)["pumps"] == 1, 60, "the pump never seen alive")

    processes["pump"].send_signal(signal.SIGTERM)
    assert processes["pump"].wait(timeout=30) == 0

    assert _delivery(client)["pumps"] == 0  # not 2 s later: at once
