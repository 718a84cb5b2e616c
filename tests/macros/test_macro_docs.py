"""The README macro section is generated from the catalog: it lists every macro and modifier."""

from __future__ import annotations

from pathlib import Path

import pytest

import macros
from macros.docs import END, START, markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_table_lists_every_macro_alias_and_modifier() -> None:
    table = markdown_table()
    for spec in macros.CATALOG:
        for name in (spec.name, *spec.aliases):
            assert f"`#{name}#`" in table
    for modifier in macros.MODIFIERS:
        assert f"`:{modifier.name}`" in table and f"`{modifier.example}`" in table


def test_the_readme_section_is_the_generated_table() -> None:
    text = README.read_text(encoding="utf-8") if README.exists() else ""
    if START not in text or END not in text:
        pytest.skip("README.md has no macros markers yet")
    section = text.split(START, 1)[1].split(END, 1)[0]
    assert section.strip() == markdown_table().strip(), "regenerate with: python -m macros.docs --write"
