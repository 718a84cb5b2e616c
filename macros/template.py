"""A parsed template: literal text and compiled macro parts, expanded in one pass."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from macros.catalog import BY_NAME
from macros.encoding import Context, Location
from macros.errors import MacroError
from macros.expand import Part, Render, compile_part, compile_render
from macros.findings import Finding
from macros.modifiers import ModifierProblem, rendering

if TYPE_CHECKING:
    from macros.parse import Token

_HOST_PARTS = (Location.SCHEME, Location.AUTHORITY)


@dataclass(frozen=True, slots=True, eq=False)
class Template:
    """Build with `macros.parse()`. Immutable, so one parsed template can serve every thread."""

    source: str
    context: Context
    tokens: tuple[Token, ...]
    problems: tuple[Finding, ...]
    macro_names: frozenset[str]
    _render: Render = field(repr=False)

    @classmethod
    def build(
        cls, source: str, context: Context, literals: Sequence[str], tokens: tuple[Token, ...]
    ) -> Template:
        problems: list[Finding] = []
        names: set[str] = set()
        texts: list[str] = []
        parts: list[Part] = []
        pending = literals[0]
        for token, literal in zip(tokens, literals[1:], strict=True):
            part = _compile(token, problems, names)
            if part is None:
                # Not in the catalog: stays as written (lint reports it).
                pending += token.text
            else:
                texts.append(pending)
                parts.append(part)
                pending = ""
            pending += literal
        texts.append(pending)
        render = compile_render(texts, parts)
        return cls(source, context, tokens, tuple(problems), frozenset(names), render)

    def expand(self, values: Mapping[str, object]) -> str:
        """Replace every macro once; values are never scanned for macros. Missing or None -> empty."""
        if self.problems:
            raise MacroError(" ".join(p.message for p in self.problems))
        if "rand" in self.macro_names and values.get("rand") is None:
            values = {**values, "rand": random.randrange(10**9)}
        return self._render(values)


def _compile(token: Token, problems: list[Finding], names: set[str]) -> Part | None:
    spec = BY_NAME.get(token.name)
    if spec is None:
        return None
    names.add(spec.name)
    if token.location in _HOST_PARTS:
        problems.append(
            Finding(
                "error",
                "macro_in_host",
                f"{token.text} is in the scheme, host, user or port of the URL; macros may only go in the"
                " path or query (e.g. https://tracker.example/postback?cid=#fobs#).",
                token.start,
                token.end,
            )
        )
        return None
    try:
        how = rendering(spec, token.modifier)
    except ModifierProblem as problem:
        problems.append(Finding("error", problem.code, problem.message, token.start, token.end))
        return None
    return compile_part(spec.name, how, token.location)
