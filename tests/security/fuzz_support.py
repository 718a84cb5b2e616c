"""Shared pieces of the validator fuzz tests: the budget, hostile values, row counts, the error-shape check
and the figures printed at the end of each module.

The budget is `FUZZ_EXAMPLES` examples per property (default small, for CI on a busy 2-core machine); a
release run raises it, e.g. `FUZZ_EXAMPLES=2000`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from dispatcher.db import get_db
from dispatcher.models import Click, Delivery, Postback, Transaction, TransactionEvent
from dispatcher.models.postbacks import postback_traffic_sources

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))

fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,  # the app, the database and the machine's other users set the pace, not the property
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Every code point, lone surrogates (`"\ud800"` in JSON) included: the ledger refuses them naming the field.
ANY_CHARS = st.characters()
any_text = st.text(ANY_CHARS, max_size=40)
CONTROL = "".join(chr(n) for n in range(32)) + "\x7f"

HOSTILE_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\r\n",
    "\t",
    "\u202e",
    "\ufeff",
    "null",
    "NaN",
    "Infinity",
    "-Infinity",
    "sNaN",
    "1e3",
    "1E+999999",
    "-0",
    "0.001",
    " 1",
    "1 ",
    "1,5",
    "0x10",
    "١٢",
    "²",
    "9" * 30,
    "1" * 5000,
    "x" * 300,
    '=HYPERLINK("http://evil.example","x")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "'; DROP TABLE transactions; --",
    "<script>alert(1)</script>",
    "#on#",
    "#fobs:raw#",
    "%00",
    "../../etc/passwd",
    "😀",
]


def json_values(text: st.SearchStrategy[str] = any_text) -> st.SearchStrategy[Any]:
    """Any JSON value (numbers as the app parses them: ints, Decimals, never floats)."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(lambda d: abs(d) < 10**40)
        | text
        | st.sampled_from(HOSTILE_STRINGS)
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
        max_leaves=8,
    )


def json_body(value: Any) -> bytes:
    """JSON text with Decimals written as JSON numbers, exactly their digits (the app parses them back as
    Decimal); str keys and values may hold anything JSON can escape, lone surrogates included."""
    return _encode(value).encode()


def _encode(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)  # "1E+2", "-0" and "0.00001" are all JSON numbers
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    return json.dumps(value)


TABLES = {
    "transactions": Transaction,
    "transaction_events": TransactionEvent,
    "deliveries": Delivery,
    "postbacks": Postback,
    "clicks": Click,
}


def row_counts(app: Flask) -> dict[str, int]:
    with get_db(app).session() as session:
        counts = {
            name: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for name, model in TABLES.items()
        }
        counts["postback_traffic_sources"] = int(
            session.scalar(select(func.count()).select_from(postback_traffic_sources)) or 0
        )
    return counts


def written(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Rows added per table (only the tables that changed)."""
    return {name: after[name] - before[name] for name in before if after[name] != before[name]}


def assert_error_shape(response: TestResponse, *, extra: Iterable[str] = ()) -> dict[str, str]:
    """A 4xx JSON body of exactly the documented shape; returns its `fields`."""
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:500])
    body = response.get_json(silent=True)
    assert isinstance(body, dict), response.get_data(as_text=True)[:500]
    assert set(body) == {"error", "fields", *extra}, body
    assert isinstance(body["error"], str) and body["error"], body
    fields = body["fields"]
    assert isinstance(fields, dict), body
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in fields.items()), body
    return fields


def assert_names_a_field(fields: Mapping[str, str], allowed: Iterable[str]) -> None:
    """A refusal of a bad value names at least one field, and only fields the request could be about."""
    allowed = set(allowed)
    assert fields, "the error names no field"
    assert set(fields) <= allowed, (fields, sorted(allowed))


@dataclass
class Figures:
    """Cases run per property (and backend), printed at the end of each module."""

    module: str
    cases: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)

    def count(self, prop: str, backend: str) -> str:
        """Counts one case; returns its key, for `outcome`."""
        key = f"{prop}[{backend}]"
        self.cases[key] += 1
        return key

    def outcome(self, key: str, what: str) -> None:
        """How a case ended (recorded, refused...), so the figures show both sides were exercised."""
        self.outcomes.setdefault(key, Counter())[what] += 1

    def report(self) -> str:
        lines = []
        for name, n in sorted(self.cases.items()):
            ends = ", ".join(f"{what} {k}" for what, k in sorted(self.outcomes.get(name, Counter()).items()))
            lines.append(f"  {name}: {n} cases" + (f" ({ends})" if ends else ""))
        properties = len({name.split("[")[0] for name in self.cases})
        summary = (
            f"validator fuzz ({self.module}): {properties} properties, {sum(self.cases.values())} cases"
            f" over {len(self.cases)} property x backend runs (FUZZ_EXAMPLES={FUZZ_EXAMPLES})"
        )
        return "\n".join(["", *lines, summary])


def backend(url: str) -> str:
    return "postgres" if url.startswith("postgresql") else "sqlite"
