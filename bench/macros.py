"""Expansion speed: a parsed template against a naive chain of str.replace, measured in the same run.

    python -m bench.macros

The naive version is what a dispatcher without a parser does: for every catalog macro present in the template,
format the value, percent-encode it with urllib.parse.quote (same output as ours) and str.replace it in. It is
also wrong (a value containing `#on#` gets expanded again); the sample values here contain no macros, so both
produce the same URL, which is checked before timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from urllib.parse import quote

import macros
from macros.modifiers import rendering

TEMPLATE = "http://yourdomain.com/pixel.track?sid=#fobs#&orderid=#on#&amount=#sa#&commission=#ca#&date=#et#"
SECONDS_PER_RUN = 0.5
RUNS = 5


NAIVE_TABLE = tuple(
    (f"#{alias}#", spec.name, rendering(spec, None).format)
    for spec in macros.CATALOG
    for alias in (spec.name, *spec.aliases)
)


def naive_expand(template: str, values: Mapping[str, object]) -> str:
    out = template
    for token, name, fmt in NAIVE_TABLE:
        if token in out:
            value = values.get(name)
            out = out.replace(token, "" if value is None else quote(fmt(value), safe="-._~"))
    return out


def rate(expand: Callable[[], str]) -> float:
    """Best of RUNS runs of about SECONDS_PER_RUN each, in expansions per second."""
    batch = 1000
    start = time.perf_counter()
    while time.perf_counter() - start < 0.1:
        expand()
    best = 0.0
    for _ in range(RUNS):
        count = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < SECONDS_PER_RUN:
            for _ in range(batch):
                expand()
            count += batch
        best = max(best, count / elapsed)
    return best


def main() -> None:
    values = macros.sample_values()
    template = macros.parse(TEMPLATE)
    ours, naive = template.expand(values), naive_expand(TEMPLATE, values)
    if ours != naive:
        raise SystemExit(f"outputs differ:\n  macros: {ours}\n  naive:  {naive}")
    print(f"template: {TEMPLATE}")
    print(f"expanded: {ours}")
    ours_rate = rate(lambda: template.expand(values))
    naive_rate = rate(lambda: naive_expand(TEMPLATE, values))
    print(f"macros (parsed template): {ours_rate:,.0f} expansions/s")
    print(f"naive (str.replace chain): {naive_rate:,.0f} expansions/s")
    print(f"macros_vs_naive: {ours_rate / naive_rate:.2f}")


if __name__ == "__main__":
    main()
