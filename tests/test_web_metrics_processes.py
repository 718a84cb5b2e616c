"""gunicorn with its config and PROMETHEUS_MULTIPROC_DIR: whichever worker answers /metrics, it serves the
sum of every worker's counts (prometheus_client multiprocess mode); the master emptied its directory."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.test_deployment import BIN, ROOT, SECRET, production_env

pytestmark = pytest.mark.processes


def _command(env: dict[str, str], *args: str) -> dict[str, str]:
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


def _api_sales(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "postback_sales_recorded_total" and sample.labels == {"channel": "api"}:
                return sample.value
    return 0.0


def test_every_gunicorn_worker_answers_the_sum_of_all_workers_counts(tmp_path: Path, redis_url: str) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"an earlier run's file")  # unreadable: it must be gone
    env = production_env(
        tmp_path,
        DATABASE_URL=f"sqlite:///{tmp_path / 'production.db'}",
        REDIS_URL=redis_url,
        SECRET_KEY=SECRET,
        PROMETHEUS_MULTIPROC_DIR=str(directory),
    )
    env["WEB_CONCURRENCY"] = "2"
    _command(env, "db", "upgrade")
    advertiser = _command(env, "create-advertiser", "Shop")
    program = _command(
        env,
        "create-program",
        str(advertiser["id"]),
        "Shoes",
        "--landing-url",
        "https://shop.example/",
        "--commission",
        "10%",
    )
    publisher = _command(
        env, "create-publisher", "Media", "media@example.com", "--password", "a-long-password-1"
    )
    source = _command(env, "create-traffic-source", str(publisher["id"]), "Search")
    web = subprocess.Popen(
        [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "app:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        _wait_for(f"{base}/livez", web)
        for order in range(6):  # a new connection each: both workers take some
            click = requests.get(
                f"{base}/c/{program['id']}",
                params={"pub": publisher["id"], "ts": source["id"]},
                allow_redirects=False,
                timeout=10,
            )
            click_id = parse_qs(urlsplit(click.headers["Location"]).query)["clickid"][0]
            sale = requests.post(
                f"{base}/api/v1/transactions",
                json={"click_id": click_id, "order_number": f"G-{order}", "sale_amount": "10.00"},
                headers={"Authorization": f"Bearer {advertiser['api_key']}"},
                timeout=10,
            )
            assert sale.status_code == 201, sale.text
        scrapes = [requests.get(f"{base}/metrics", timeout=10) for _ in range(6)]
    finally:
        web.terminate()
        _, errors = web.communicate(timeout=60)

    assert [response.status_code for response in scrapes] == [200] * 6, errors
    assert [_api_sales(response.text) for response in scrapes] == [6.0] * 6
    assert not (directory / "counter_1.db").exists()
    assert len(list(directory.glob("counter_*.db"))) >= 1


def _wait_for(url: str, process: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            requests.get(url, timeout=5)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {seconds} s")
