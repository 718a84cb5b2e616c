"""Postback macros: catalog, parsing, lint and single-pass, context-encoded expansion.

    tpl = macros.parse("https://t.example/pb?cid=#fobs#&payout=#ca#")
    tpl.expand({"fobs": "abc", "ca": Decimal("1.50")})

Missing values (e.g. `#fobs3#` not passed on the click) expand to an empty string (`null` for a bare macro
in a JSON body). Naive datetimes are taken as UTC. Float values are refused: money is Decimal.
"""

from __future__ import annotations

from macros.catalog import CATALOG, CLICK_MACROS, MacroSpec, sample_values
from macros.encoding import Context, Location
from macros.errors import MacroError
from macros.findings import Finding
from macros.lint import lint
from macros.modifiers import MODIFIERS, ModifierSpec
from macros.parse import parse
from macros.template import Template

__all__ = [
    "CATALOG",
    "CLICK_MACROS",
    "MODIFIERS",
    "Context",
    "Finding",
    "Location",
    "MacroError",
    "MacroSpec",
    "ModifierSpec",
    "Template",
    "lint",
    "parse",
    "sample_values",
]
