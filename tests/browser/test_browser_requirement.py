"""Without Chromium the browser tests skip with the install hint, except in CI (REQUIRE_BROWSER=1)."""

from __future__ import annotations

import pytest
from _pytest.outcomes import Failed, Skipped

from tests.browser import conftest


def test_a_missing_browser_skips_with_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("REQUIRE_BROWSER", raising=False)

    with pytest.raises(Skipped, match="apt-get install -y chromium"):
        conftest._browser_or_skip()


def test_ci_turns_a_missing_browser_into_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("REQUIRE_BROWSER", "1")

    with pytest.raises(Failed, match="REQUIRE_BROWSER=1 but browser tests need Debian's Chromium"):
        conftest._browser_or_skip()
