"""README's demo walk-through runs as written: a click, a sale and its approval, with curl against a server
seeded as `make run` seeds it (the ids and key it names are the fresh demo's)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from app import create_app
from dispatcher import demo
from dispatcher.db import get_db
from dispatcher.models import Base, Click, Delivery, Transaction, TransactionEvent
from tests.conftest import app_settings
from tests.serving import serve_in_thread

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- demo-walkthrough:"


def walkthrough() -> str:
    text = README.read_text()
    found = re.search(re.escape(MARKER) + r".*?-->\n```sh\n(.*?)```", text, re.DOTALL)
    assert found, "README lost its demo walk-through block"
    return found.group(1)


@pytest.fixture
def demo_app(tmp_path: Path, redis_url: str) -> Iterator[Flask]:
    app = create_app(app_settings(tmp_path, f"sqlite:///{tmp_path / 'demo.db'}", redis_url, DEMO_MODE=True))
    Base.metadata.create_all(get_db(app).engine)
    yield app
    get_db(app).dispose()


@pytest.mark.skipif(not Path("/usr/bin/curl").exists(), reason="the walk-through uses curl")
def test_the_readmes_demo_walkthrough_runs_as_written(demo_app: Flask) -> None:
    server = make_server("127.0.0.1", 0, demo_app, threaded=True)
    serve_in_thread(server)
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with get_db(demo_app).session() as session:
            seeded = demo.seed(session, base)
        env = {**os.environ, "BASE": base, "API_KEY": seeded.details["advertiser"]["api_key"]}
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", walkthrough()],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.shutdown()
        server.server_close()

    assert done.returncode == 0, done.stderr
    assert '"commission":"4.99"' in done.stdout.replace(" ", "")  # step 2's answer
    with get_db(demo_app).session() as session:
        sale = session.scalars(select(Transaction).where(Transaction.order_number == "DEMO-1")).one()
        assert (sale.status, str(sale.commission)) == ("approved", "4.99")
        click = session.get(Click, sale.click_pk)
        assert click is not None and click.fobs == "my-tracker-click"
        kinds = session.scalars(
            select(TransactionEvent.kind).where(TransactionEvent.transaction_id == sale.id)
        )
        assert list(kinds) == ["created", "approved"]
        # The demo postback fires on the sale and on its approval, as step 3 says: a receipt for each.
        sent = session.scalars(select(Delivery.id).where(Delivery.transaction_id == sale.id))
        assert len(list(sent)) == 2
