"""CSV files people open in spreadsheets: written a line at a time, every cell safe from formula injection."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

# A spreadsheet runs a cell that starts with one of these as a formula: order numbers and sub ids come from
# advertisers and visitors' URLs.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def csv_line(values: Iterable[object]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(list(values))
    return out.getvalue()
