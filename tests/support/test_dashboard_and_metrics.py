"""The dashboard renders the last 24 h from real rows; /metrics answers Prometheus text to whom it should."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue, SimpleWorker
from rq.worker import WorkerStatus

from dispatcher.db import get_db
from dispatcher.heartbeats import PumpHeartbeat
from dispatcher.models import Attempt
from dispatcher.queueing import LANES
from dispatcher.support import dashboard
from tests.conftest import app_settings
from tests.dispatcher import factories
from tests.support.conftest import HOSTILE, Network

METRICS_TOKEN = "scrape-token-0123456789"


def _recent_activity(app: Flask) -> dict[str, int]:
    """Ten attempts in the last hour (7 succeeded, 3 failed), one failed delivery, one pending, one paused."""
    now = datetime.now(UTC)
    with get_db(app).session() as session:
        owner = factories.publisher(session)
        owner.name = "Noisy Media"
        hook = factories.postback(session, owner, active=False, paused_reason="Endpoint gone", paused_at=now)
        shop = factories.program(session)
        failed = factories.delivery(
            session,
            hook,
            factories.event(session, factories.transaction(session, owner, shop)),
            state="failed",
            destination_host="down.example",
            completed_at=now - timedelta(minutes=5),
        )
        factories.delivery(
            session,
            hook,
            factories.event(session, factories.transaction(session, owner, shop)),
            state="pending",
            created_at=now - timedelta(minutes=7),
        )
        for n in range(10):
            session.add(
                Attempt(
                    delivery_id=failed.id,
                    number=n + 1,
                    outcome="succeeded" if n < 7 else "failed",
                    started_at=now - timedelta(minutes=20 + n),
                    duration_ms=100 * (n + 1),
                    method="GET",
                    url="http://x/",
                )
            )
        return {"hook": hook.id, "publisher": owner.id}


def test_top_failing_hosts_count_deliveries_still_retrying(app: Flask, console: FlaskClient) -> None:
    _recent_activity(app)  # down.example: one failed for good
    now = datetime.now(UTC)
    with get_db(app).session() as session:
        owner = factories.publisher(session)
        hook = factories.postback(session, owner)
        shop = factories.program(session)
        for _ in range(2):  # a receiver down for an hour: retrying, none failed for good yet
            factories.delivery(
                session,
                hook,
                factories.event(session, factories.transaction(session, owner, shop)),
                state="pending",
                attempt_count=3,
                destination_host="flaky.example:8443",
                next_attempt_at=now + timedelta(minutes=30),
            )

    page = console.get("/support/").get_data(as_text=True)

    hosts = page.split('id="failing-hosts"')[1].split("</table>")[0]
    assert hosts.index("flaky.example:8443") < hosts.index("down.example")  # 2 retrying before 1 failed
    assert "<td>0</td><td>2</td>" in hosts and "<td>1</td><td>0</td>" in hosts


def test_the_dashboard_shows_charts_trouble_spots_queues_and_paused_postbacks(
    app: Flask, console: FlaskClient, redis_client: redis.Redis
) -> None:
    made = _recent_activity(app)
    Queue("postbacks", connection=redis_client).enqueue("workers.jobs.send_deliveries", args=([1],))

    page = console.get("/support/").get_data(as_text=True)

    assert page.count("<svg") == 4 and "<polyline" in page
    assert '<span class="stat-value" id="stat-attempts">10</span>' in page
    assert '<span class="stat-value" id="stat-success">70.0%</span>' in page
    assert '<span class="stat-value" id="queue-postbacks">1</span>' in page
    assert '<span class="stat-value" id="stat-pending">1</span>' in page
    assert "7 min" in page.split('id="stat-oldest">')[1].split("<")[0]
    assert "down.example" in page.split('id="failing-hosts"')[1]
    assert "Noisy Media" in page.split('id="failing-publishers"')[1]
    assert f"/support/postbacks/{made['hook']}" in page.split('id="paused"')[1]


def test_the_dashboard_warns_when_no_worker_and_no_pump_is_alive(console: FlaskClient) -> None:
    page = console.get("/support/").get_data(as_text=True)

    assert 'id="no-worker"' in page and 'id="no-pump"' in page
    assert '<span class="stat-value" id="stat-workers">0</span>' in page
    assert '<span class="stat-value" id="stat-pumps">0</span>' in page
    assert 'id="workers"' not in page and 'id="pumps"' not in page


def test_the_dashboard_lists_workers_and_pumps_with_the_age_of_their_heartbeats(
    console: FlaskClient, redis_client: redis.Redis
) -> None:
    worker = SimpleWorker([Queue(name, connection=redis_client) for name in LANES], connection=redis_client)
    worker.register_birth()
    worker.set_state(WorkerStatus.BUSY)
    pump = PumpHeartbeat(redis_client, ttl_s=30)
    pump.host = HOSTILE  # whatever a heartbeat says is shown as text
    pump.beat(passed=False, error="OperationalError")

    page = console.get("/support/").get_data(as_text=True)

    workers = page.split('id="workers"')[1].split("</table>")[0]
    pumps = page.split('id="pumps"')[1].split("</table>")[0]
    assert (
        f"<td>{socket.gethostname()}</td><td>{os.getpid()}</td><td>postbacks, postbacks-retry</td>" in workers
    )
    assert "<td>busy</td>" in workers and " s ago</td>" in workers
    assert HOSTILE not in page and "&lt;script&gt;" in pumps
    assert f"<td>{os.getpid()}</td><td>failed (OperationalError); last good —</td>" in pumps
    assert 'id="no-worker"' not in page and 'id="no-pump"' not in page
    assert '<span class="stat-value" id="stat-pumps">1</span>' in page


def test_dashboard_percentiles_and_buckets_cover_the_whole_day(app: Flask) -> None:
    _recent_activity(app)
    with get_db(app).session() as session:
        board = dashboard.build(session, redis.Redis.from_url("redis://127.0.0.1:1"))

    busy = [bucket for bucket in board.buckets if bucket.attempts]
    assert 96 <= len(board.buckets) <= 97
    assert sum(b.attempts for b in busy) == 10 and sum(b.succeeded for b in busy) == 7
    assert all(b.p50_ms is not None and b.p95_ms is not None and b.p50_ms <= b.p95_ms for b in busy)
    assert board.queues.depths is None  # Redis unreachable is shown, not an error


def test_an_empty_dashboard_renders(console: FlaskClient) -> None:
    page = console.get("/support/")

    assert page.status_code == 200 and "no data in the last 24 h" in page.get_data(as_text=True)


def _samples(text: str) -> dict[str, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}"] = sample.value
    return found


def test_metrics_are_prometheus_text_with_gauges_from_the_database_and_rq(
    app: Flask, client: FlaskClient, network: Network
) -> None:
    _recent_activity(app)

    response = client.get("/metrics")
    text = response.get_data(as_text=True)
    samples = _samples(text)
    types = {family.name: family.type for family in text_string_to_metric_families(text)}

    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert samples["postback_deliveries_pending{}"] == 2
    assert samples["postback_oldest_pending_age_seconds{}"] > 3600  # network's pending one is from 2026-11-10
    assert samples["postback_queue_depth{queue=postbacks}"] == 0
    assert samples["postback_workers{}"] == 0
    assert samples["postback_pumps{}"] == 0
    assert samples["postback_postbacks_paused{}"] == 1
    # Counted where the work happens (tests/workers/test_worker_metrics.py), typed as Prometheus expects.
    assert types["postback_attempt_duration_seconds"] == "histogram"
    assert types["postback_sale_to_send_delay_seconds"] == "histogram"
    assert types["postback_attempts"] == types["postback_deliveries_finished"] == "counter"
    # Replaced: a windowed gauge, a gauge histogram, counters every host answered alike.
    assert not [
        name for name in samples if "last_hour" in name or "_gcount" in name or "_recorded_total{}" in name
    ]


@pytest.mark.parametrize(
    ("environ", "headers", "status"),
    [
        ({"REMOTE_ADDR": "127.0.0.1"}, {}, 200),
        ({"REMOTE_ADDR": "10.1.2.3"}, {}, 403),
        ({"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-For": "198.51.100.9"}, 403),
    ],
)
def test_without_a_token_only_direct_local_scrapes_are_answered(
    client: FlaskClient, environ: dict[str, str], headers: dict[str, str], status: int
) -> None:
    assert client.get("/metrics", environ_base=environ, headers=headers).status_code == status


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(f"Bearer {METRICS_TOKEN}", 200), ("Bearer wrong-token-0123456789", 401), ("", 401)],
)
def test_with_a_token_every_scrape_needs_it(
    tmp_path: object, database_url: str, redis_url: str, authorization: str, status: int
) -> None:
    from pathlib import Path

    from app import create_app
    from dispatcher.models import Base

    app = create_app(app_settings(Path(str(tmp_path)), database_url, redis_url, METRICS_TOKEN=METRICS_TOKEN))
    Base.metadata.create_all(get_db(app).engine)
    headers = {"Authorization": authorization} if authorization else {}

    response = app.test_client().get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": "10.1.2.3"})

    assert response.status_code == status
    get_db(app).dispose()
