"""The README's signature verification example, run as written: tests verify what receivers got with it."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"
_BLOCK = re.compile(
    r"<!-- signature-example:start -->\s*```python\n(.*?)```\s*<!-- signature-example:end -->", re.S
)

Verifier = Callable[..., bool]


def readme_verifier() -> Verifier:
    """`postback_is_genuine` from the README, exactly as a receiver would copy it."""
    found = _BLOCK.search(README.read_text(encoding="utf-8"))
    assert found, "README.md has no signature example between its markers"
    scope: dict[str, object] = {}
    exec(textwrap.dedent(found.group(1)), scope)  # noqa: S102 - our own README, the point of the test
    verify = scope["postback_is_genuine"]
    assert callable(verify)
    return verify
