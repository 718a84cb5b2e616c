"""Browser tests: the real app on a real HTTP server, driven by Debian's Chromium through Playwright.

Without /usr/bin/chromium they skip with the install hint, unless REQUIRE_BROWSER=1 (CI) makes that a failure.
Playwright's own browser download (`playwright install`) is never used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from app import create_app
from dispatcher.db import get_db
from dispatcher.models import Base
from tests.conftest import app_settings
from tests.portal.conftest import Receiver
from tests.serving import serve_in_thread

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = (
    "browser tests need Debian's Chromium and Playwright: `sudo apt-get install -y chromium` and "
    "`pip install -r requirements-dev.txt` (never `playwright install`)"
)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _browser_or_skip() -> Any:
    missing = not Path(CHROMIUM).exists()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = True
    if missing:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)
    return sync_playwright


@pytest.fixture
def browser_page() -> Iterator[Any]:
    sync_playwright = _browser_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()


class LiveServer:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = serve_in_thread(self.server)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def live_app(tmp_path: Path, redis_url: str) -> Iterator[Flask]:
    """The app on a SQLite file, so worker processes started by a test share its database."""
    settings = app_settings(tmp_path, f"sqlite:///{tmp_path / 'browser.db'}", redis_url, DEMO_MODE=True)
    app = create_app(settings)
    Base.metadata.create_all(get_db(app).engine)
    yield app
    get_db(app).dispose()


@pytest.fixture
def live_server(live_app: Flask) -> Iterator[LiveServer]:
    server = LiveServer(live_app)
    yield server
    server.stop()


@pytest.fixture
def screenshots() -> Any:
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page: Any, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"portal-{name}.png"), full_page=True)

    return take


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()
