"""Format modifiers: `#name:modifier#`. One modifier per macro."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass

from macros import values
from macros.catalog import Kind, MacroSpec

Format = Callable[[object], str]
MAX_DECIMALS = 8
# The directives Python documents for every platform; others (e.g. %s, local-time epoch) vary or mislead.
# Lone surrogates are left out too: strftime cannot encode them (UnicodeEncodeError at every expansion).
_STRFTIME = re.compile(r"(?:[^%\x00-\x1f\ud800-\udfff]|%[YmdHMSfjaAbBpyIzZGVuwUWcxX%])*").fullmatch


@dataclass(frozen=True, slots=True)
class ModifierSpec:
    name: str
    kinds: tuple[Kind, ...]
    description: str
    example: str

    @property
    def applies_to(self) -> str:
        return ", ".join(self.kinds) if self.kinds else "any"


MODIFIERS: tuple[ModifierSpec, ...] = (
    ModifierSpec("iso", ("time",), "ISO 8601 in UTC with `Z` (the default for `#et#`)", "#et:iso#"),
    ModifierSpec("unix", ("time",), "Unix seconds (the default for `#ts#`)", "#et:unix#"),
    ModifierSpec("date", ("time",), "Date `YYYY-MM-DD` in UTC", "#et:date#"),
    ModifierSpec("%...", ("time",), "Any `strftime` pattern, applied in UTC", "#et:%Y-%m-%d %H:%M:%S#"),
    ModifierSpec("cents", ("money",), "Whole minor units (amount x 100, rounded half up)", "#sa:cents#"),
    ModifierSpec(
        "0..8", ("money",), "That many decimals, dot separator, rounded half up (default 2)", "#sa:3#"
    ),
    ModifierSpec("lower", (), "Lower case", "#programname:lower#"),
    ModifierSpec("upper", (), "Upper case", "#status:upper#"),
    ModifierSpec("b64", (), "URL-safe base64 of the UTF-8 value (with `=` padding)", "#fobs:b64#"),
    ModifierSpec(
        "raw",
        (),
        "No encoding for the context: unsafe, lint warns (in a header, what a header cannot carry is still "
        "encoded)",
        "#fobs:raw#",
    ),
)
_BY_NAME = {m.name: m for m in MODIFIERS}


@dataclass(frozen=True, slots=True)
class Rendering:
    format: Format
    numeric: bool = False
    raw: bool = False
    # Set when the output needs no percent- or form-encoding: it formats straight into the encoded text.
    encoded: Format | None = None


class ModifierProblem(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def modifier_spec(modifier: str) -> ModifierSpec | None:
    if "%" in modifier:
        return _BY_NAME["%..."]
    if modifier.isdecimal() and len(modifier) == 1 and int(modifier) <= MAX_DECIMALS:
        return _BY_NAME["0..8"]
    return _BY_NAME.get(modifier)


def rendering(spec: MacroSpec, modifier: str | None) -> Rendering:
    """How to turn a value of `spec` into text; raises ModifierProblem for a modifier that cannot apply."""
    if modifier is None:
        return _kind_rendering(spec, spec.default_modifier)
    mod = modifier_spec(modifier)
    if mod is None:
        raise ModifierProblem("unknown_modifier", _unknown_message(spec, modifier))
    if mod.kinds and spec.kind not in mod.kinds:
        raise ModifierProblem(
            "modifier_not_applicable",
            f"Modifier '{modifier}' in #{spec.name}:{modifier}# applies to {mod.applies_to} macros only;"
            f" #{spec.name}# is {spec.kind}.",
        )
    if mod.kinds:
        return _kind_rendering(spec, modifier)
    base = _kind_rendering(spec, spec.default_modifier)
    return _wrap(base, modifier)


def _unknown_message(spec: MacroSpec, modifier: str) -> str:
    fits = [m.name for m in MODIFIERS if not m.kinds or spec.kind in m.kinds]
    return (
        f"Unknown modifier '{modifier}' in #{spec.name}:{modifier}#; #{spec.name}# takes: {', '.join(fits)}."
    )


def _wrap(base: Rendering, modifier: str) -> Rendering:
    inner = base.format
    if modifier == "raw":
        return Rendering(inner, base.numeric, raw=True)
    if modifier == "b64":
        return Rendering(lambda v: base64.urlsafe_b64encode(inner(v).encode()).decode("ascii"))
    if modifier == "lower":
        return Rendering(lambda v: inner(v).lower(), base.numeric)
    return Rendering(lambda v: inner(v).upper(), base.numeric)


def _kind_rendering(spec: MacroSpec, modifier: str | None) -> Rendering:
    if spec.kind == "text":
        return Rendering(values.text)
    if spec.kind == "int":
        return Rendering(values.integer, numeric=True)
    if spec.kind == "money":
        return _money_rendering(modifier or "2")
    return _time_rendering(modifier or "iso")


def _money_rendering(modifier: str) -> Rendering:
    if modifier == "cents":
        return Rendering(values.cents, numeric=True, encoded=values.cents)
    places = int(modifier)
    if places == 2:
        return Rendering(values.decimals2, numeric=True, encoded=values.decimals2)

    def fixed(value: object) -> str:
        return values.decimals(value, places)

    return Rendering(fixed, numeric=True, encoded=fixed)


def _time_rendering(modifier: str) -> Rendering:
    if modifier == "unix":
        return Rendering(values.unix, numeric=True, encoded=values.unix)
    if modifier == "iso":
        return Rendering(values.iso, encoded=values.iso_percent)
    if modifier == "date":
        return Rendering(values.date, encoded=values.date)
    if not _STRFTIME(modifier):
        raise ModifierProblem(
            "unknown_modifier",
            f"'{modifier}' is not a strftime pattern from the portable list"
            " (%Y %m %d %H %M %S %f %j %a %A %b %B %p %y %I %z %Z %G %V %u %w %U %W %c %x %X %%);"
            " for unix seconds use :unix.",
        )
    return Rendering(lambda v: values.strftime(v, modifier))
