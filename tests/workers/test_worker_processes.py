"""Real worker and pump processes (`flask --app app worker|pump`), a real Redis and a real local receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from dispatcher.db import Database
from dispatcher.models import Base
from dispatcher.models.deliveries import RESPONSE_EXCERPT_BYTES
from dispatcher.queueing import enqueue_deliveries
from tests.conftest import postgres_schema
from tests.workers.conftest import (
    Receiver,
    Reply,
    attempt_rows,
    delivery_row,
    make_delivery,
    postback_row,
    run_command,
    start_command,
    worker_env,
)

# Each test starts the product's worker or pump as a process: what it does as a process is the point.
pytestmark = pytest.mark.processes

SECRET = "whsec_" + base64.b64encode(b"integration-test-signing-key-32b").decode()


@dataclass(frozen=True)
class Case:
    reply: Reply
    outcome: str
    state: str
    error_class: str | None


CASES = {
    "/ok": Case(Reply(200), "succeeded", "succeeded", None),
    "/big": Case(Reply(body=b"z" * 200_000), "succeeded", "succeeded", None),
    "/signed": Case(Reply(200), "succeeded", "succeeded", None),
    **{
        f"/s{code}": Case(Reply(code), "retry", "pending", "http_status")
        for code in (500, 502, 503, 408, 429)
    },
    **{
        f"/s{code}": Case(Reply(code), "failed", "failed", "http_status")
        for code in (400, 401, 403, 404, 422, 410)
    },
    "/moved": Case(Reply(302, headers={"Location": "http://10.0.0.1/admin"}), "failed", "failed", "redirect"),
    "/later": Case(Reply(503, headers={"Retry-After": "30"}), "retry", "pending", "http_status"),
}


@dataclass
class Scenario:
    database: Database
    receiver: Receiver
    ids: dict[str, int]
    postbacks: dict[str, int]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def scenario(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Scenario]:
    """Every case as one delivery, all sent by one real `flask --app app worker --burst` process."""
    tmp_path = tmp_path_factory.mktemp("scenario")
    with _empty_database(request.param, tmp_path) as url:
        database = Database(url)
        Base.metadata.create_all(database.engine)
        receiver = Receiver()
        for path, case in CASES.items():
            receiver.script[path] = [case.reply]
        ids, postbacks = {}, {}
        for path in CASES:
            extra = (
                {"method": "POST", "body_template": "cid=#fobs#", "signing_secret": SECRET}
                if path == "/signed"
                else {}
            )
            ids[path], postbacks[path] = make_delivery(database, receiver.url(path + "?cid=#fobs#"), **extra)
        client = redis.Redis.from_url(redis_url)
        client.flushall()
        enqueue_deliveries(client, list(ids.values()))

        done = run_command(worker_env(url, redis_url, tmp_path), "worker", "--burst")

        assert done.returncode == 0, done.stderr
        yield Scenario(database, receiver, ids, postbacks)
        receiver.close()
        database.dispose()


@pytest.mark.parametrize("path", list(CASES))
def test_each_answer_leads_to_its_outcome(scenario: Scenario, path: str) -> None:
    case = CASES[path]
    [attempt] = attempt_rows(scenario.database, scenario.ids[path])
    row = delivery_row(scenario.database, scenario.ids[path])

    assert (attempt.outcome, attempt.error_class, attempt.status_code) == (
        case.outcome,
        case.error_class,
        case.reply.status,
    )
    assert (row.state, row.attempt_count, row.leased_by) == (case.state, 1, None)
    assert attempt.resolved_ip == "127.0.0.1" and attempt.worker
    assert len(scenario.receiver.hits(path)) == 1


def test_410_paused_its_postback(scenario: Scenario) -> None:
    hook = postback_row(scenario.database, scenario.postbacks["/s410"])

    assert not hook.active and hook.paused_reason and "410" in hook.paused_reason


def test_the_redirect_was_not_followed_and_its_location_logged(scenario: Scenario) -> None:
    [attempt] = attempt_rows(scenario.database, scenario.ids["/moved"])

    assert "http://10.0.0.1/admin" in (attempt.error_message or "")
    assert [r.path for r in scenario.receiver.received if r.path.startswith("/admin")] == []


def test_retry_after_was_capped_at_twice_the_scheduled_delay(scenario: Scenario) -> None:
    row = delivery_row(scenario.database, scenario.ids["/later"])
    [attempt] = attempt_rows(scenario.database, scenario.ids["/later"])

    assert row.next_attempt_at is not None
    assert 2 <= (row.next_attempt_at - attempt.started_at).total_seconds() < 3.5  # schedule 1 s: [1, 2]


def test_the_body_read_was_capped(scenario: Scenario) -> None:
    [attempt] = attempt_rows(scenario.database, scenario.ids["/big"])

    assert attempt.response_excerpt == "z" * RESPONSE_EXCERPT_BYTES


def test_the_signature_verifies_with_the_standard_webhooks_algorithm(scenario: Scenario) -> None:
    [hit] = scenario.receiver.hits("/signed")
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{hit.headers['webhook-id']}.{hit.headers['webhook-timestamp']}.".encode() + hit.body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()

    assert hit.body == b"cid=trk-1"
    assert hit.headers["webhook-signature"] == expected


def test_a_host_name_resolving_to_127_0_0_1_is_refused_unless_allowed(
    database: Database, redis_url: str, redis_client: redis.Redis, receiver: Receiver, tmp_path: Path
) -> None:
    delivery_id, _ = make_delivery(database, receiver.url("/pb", host="localhost"))
    enqueue_deliveries(redis_client, [delivery_id])

    done = run_command(
        worker_env(database.url, redis_url, tmp_path, POSTBACK_ALLOWED_NETWORKS=""), "worker", "--burst"
    )

    assert done.returncode == 0, done.stderr
    [attempt] = attempt_rows(database, delivery_id)
    assert (attempt.outcome, attempt.error_class) == ("failed", "ssrf")
    assert "localhost resolves to 127.0.0.1, a loopback address" in (attempt.error_message or "")
    assert delivery_row(database, delivery_id).state == "failed"
    assert receiver.received == []


def test_a_killed_workers_delivery_is_sent_again_after_its_lease_expires(
    database: Database, redis_url: str, redis_client: redis.Redis, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.script["/pb"] = [
        Reply(delay_s=8),
        Reply(200),
    ]  # the first request hangs while we kill the worker
    delivery_id, _ = make_delivery(database, receiver.url("/pb"))
    env = worker_env(database.url, redis_url, tmp_path, POSTBACK_LEASE_S="3", POSTBACK_TOTAL_TIMEOUT_S="10")
    worker = start_command(env, "worker")
    try:  # killed in any case: a worker left running would take the next tests' jobs (same Redis)
        enqueue_deliveries(redis_client, [delivery_id])
        _wait_for(lambda: len(receiver.hits("/pb")) == 1, 30, "the first request never arrived")
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    assert delivery_row(database, delivery_id).leased_by is not None

    survivors = [start_command(env, "pump"), start_command(env, "worker")]
    try:
        _wait_for(lambda: delivery_row(database, delivery_id).state == "succeeded", 30, "never re-sent")
    finally:
        for process in survivors:
            process.send_signal(signal.SIGTERM)
        for process in survivors:
            process.wait(timeout=30)

    first, second = attempt_rows(database, delivery_id)
    assert (first.outcome, first.error_class) == ("retry", "interrupted")
    assert (second.outcome, second.status_code) == ("succeeded", 200)
    assert len(receiver.hits("/pb")) == 2
    # Sent again once the dead worker's lease ran out, not before (how soon after depends on how fast this
    # machine starts the survivors: waited for above, not timed).
    assert second.started_at >= first.started_at + timedelta(seconds=3)


def test_a_retry_is_handed_out_by_the_pump_and_succeeds(
    database: Database, redis_url: str, redis_client: redis.Redis, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.script["/flaky"] = [Reply(503), Reply(500), Reply(200)]
    delivery_id, _ = make_delivery(database, receiver.url("/flaky?n=#attempt#"))
    env = worker_env(database.url, redis_url, tmp_path)
    processes = [start_command(env, "worker"), start_command(env, "pump")]
    enqueue_deliveries(redis_client, [delivery_id])
    try:
        _wait_for(
            lambda: delivery_row(database, delivery_id).state == "succeeded", 30, "retries never succeeded"
        )
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)  # Ctrl-C: both stop cleanly
        codes = [process.wait(timeout=30) for process in processes]

    assert [h.path for h in receiver.hits("/flaky")] == ["/flaky?n=1", "/flaky?n=2", "/flaky?n=3"]
    assert [a.outcome for a in attempt_rows(database, delivery_id)] == ["retry", "retry", "succeeded"]
    assert codes == [0, 0]


def _wait_for(condition: Callable[[], bool], timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


@contextmanager
def _empty_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """An empty SQLite file or PostgreSQL schema for a module-scoped scenario."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'scenario.db'}"
        return
    with postgres_schema() as url:
        yield url


def test_worker_processes_option_runs_several_workers(
    database: Database, redis_url: str, redis_client: redis.Redis, receiver: Receiver, tmp_path: Path
) -> None:
    ids = [make_delivery(database, receiver.url(f"/p{n}"))[0] for n in range(3)]
    for delivery_id in ids:
        enqueue_deliveries(redis_client, [delivery_id])

    done = run_command(worker_env(database.url, redis_url, tmp_path), "worker", "--burst", "--processes", "2")

    assert done.returncode == 0, done.stderr
    assert [delivery_row(database, i).state for i in ids] == ["succeeded"] * 3
