"""The README's macro section, generated from the catalog so the two cannot drift."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from macros.catalog import CATALOG, MacroSpec, sample_values
from macros.encoding import Context
from macros.modifiers import MODIFIERS
from macros.parse import parse

START, END = "<!-- macros:start -->", "<!-- macros:end -->"
NOTES = (
    "Macros are written `#name#` or `#name:modifier#`, lower case. Expansion is single pass: a value that"
    " contains `#on#` is sent as those characters, never expanded again.",
    "Missing values (e.g. `#fobs3#` not passed on the click) expand to an empty string; a bare macro in a"
    " JSON body expands to `null`.",
    "Each value is escaped for where it goes: in a URL path or query every character outside RFC 3986"
    " unreserved (`A-Z a-z 0-9 - . _ ~`) is percent-encoded as UTF-8; form bodies are form-encoded; in a"
    " JSON body a macro inside a string is JSON-escaped, and a bare macro becomes a number (money, IDs,"
    " `#attempt#`, `#ts#`, `:unix`, `:cents`) or a quoted string. A macro in the scheme, host, user or port"
    " is refused.",
    "Times are sent in UTC (a time without a zone is taken as UTC). Money is rounded half up.",
)


def markdown_table() -> str:
    """Markdown listing every macro and modifier, with samples computed by the real expansion."""
    samples = sample_values()
    lines = ["| Macro | Value | Kind | Sample | Reads |", "|---|---|---|---|---|"]
    lines += [_macro_row(spec, samples) for spec in CATALOG]
    lines += ["", "| Modifier | Applies to | Effect | Example | Sample |", "|---|---|---|---|---|"]
    for mod in MODIFIERS:
        sample = parse(mod.example, Context.TEXT).expand(samples)
        lines.append(
            f"| `:{mod.name}` | {mod.applies_to} | {_cell(mod.description)} | `{mod.example}` | `{sample}` |"
        )
    lines += ["", *(f"- {note}" for note in NOTES)]
    return "\n".join(lines) + "\n"


def _macro_row(spec: MacroSpec, samples: dict[str, object]) -> str:
    macro = f"`{spec.token}`" + "".join(f" (alias `#{alias}#`)" for alias in spec.aliases)
    sample = parse(spec.token, Context.TEXT).expand(samples)
    return f"| {macro} | {_cell(spec.description)} | {spec.kind} | `{sample}` | `{spec.attribute}` |"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def replace_section(readme: str) -> str:
    """`readme` with the text between the macros markers replaced by the generated table."""
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{markdown_table()}{END}{tail}"


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m macros.docs` prints the section; `--write [README.md]` puts it between the markers."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(markdown_table(), end="")
        return
    path = Path(args[1] if len(args) > 1 else "README.md")
    path.write_text(replace_section(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main()
