"""CSV uploads of missed or offline sales: read line by line, recorded in chunks through `record_sales`.

Format: `click_id,order_number,sale_amount[,currency,event,status,event_time]`, one sale per line. A first
line whose cells are all column names is a header; with a header, columns may come in any order and the
clickless columns (`publisher_id`, `traffic_source_id`, `program_id`) and `commission` may be added. Blank
lines are skipped. Line numbers are the file's own (the header is line 1), so an advertiser can find the line.

The file is streamed: a chunk of lines is parsed, recorded and answered before the next is read, so a 50,000
line file needs neither the memory for all of it nor a request that says nothing until the end.
"""

from __future__ import annotations

import csv
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from dispatcher.ledger.reports import FIELD_NAMES, SaleReport
from dispatcher.ledger.restatements import record_or_restate
from dispatcher.ledger.results import Outcome, Rejected
from dispatcher.validation import FieldError

POSITIONAL_COLUMNS = ("click_id", "order_number", "sale_amount", "currency", "event", "status", "event_time")
REQUIRED_COLUMNS = ("order_number",)
CHUNK_LINES = 500
MAX_CELL_CHARS = 4096  # a longer cell is an error of that line
# The csv reader's own limit, far above MAX_CELL_CHARS: when it refuses a cell it stops mid-row, and the rest
# of a row spanning lines (a quoted cell with a line break after the long one) was then read as the start of a
# quoted cell that swallowed the next good line. Cells are checked against MAX_CELL_CHARS once read whole;
# this limit only bounds memory.
READER_CELL_LIMIT = 1024 * 1024
MAX_LINE_BYTES = 64 * 1024  # read at most this much at once, whatever the line
_LINE_END = re.compile(rb"\r\n|\r|\n")


class Readable(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class LineOutcome:
    line: int
    outcome: Outcome


class CsvFile:
    """An open upload: its columns are known once the first line is read (a bad header is a FieldError)."""

    def __init__(self, stream: Readable) -> None:
        csv.field_size_limit(READER_CELL_LIMIT)
        # Lines that are not UTF-8, by line number: read as if they were (bad bytes replaced), then refused.
        # Replacing quietly made different order numbers one ("Caf\xe9-1" and "Caf\xe8-1" both "Caf\ufffd-1"),
        # and the second line then adjusted the first one's sale.
        self._not_utf8: set[int] = set()
        self._too_long: set[int] = set()
        # strict: an unclosed quote raises (at the end of the file, or at the cell size limit) instead of
        # ending as one cell that swallowed every line after it; `_next_row` then reads those lines again.
        self._lines = _Lines(_decoded_lines(stream, self._not_utf8, self._too_long))
        self._reader = csv.reader(self._lines, strict=True)
        self._first: tuple[int, list[str] | FieldError] | None = None
        self.columns: tuple[str, ...] = POSITIONAL_COLUMNS
        self.has_header = False
        first = self._next_row()
        if first is not None and isinstance(first[1], list) and _looks_like_header(first[1]):
            self.columns = _header_columns(first[1])
            self.has_header = True
        else:
            self._first = first

    def rows(self) -> Iterator[tuple[int, SaleReport | FieldError]]:
        if self._first is not None:
            yield self._first[0], self._report(self._first[1])
        while (row := self._next_row()) is not None:
            yield row[0], self._report(row[1])

    def _next_row(self) -> tuple[int, list[str] | FieldError] | None:
        """The next record that is not blank, by its first line: its cells, or why it cannot be read."""
        while True:
            first = self._lines.number + 1  # a record with a quoted line break is named by its first line
            self._lines.taken.clear()
            try:
                cells = next(self._reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                # Only the first line is refused: the lines after it, read into the broken cell, are read
                # again as lines of their own (the reader starts each record afresh).
                self._lines.push_back(self._lines.taken[1:])
                return first, FieldError("line", str(exc), "is not readable CSV")
            lines = range(first, self._lines.number + 1)
            if any(line in self._too_long for line in lines):
                return first, FieldError("line", None, f"is too long: {MAX_LINE_BYTES // 1024} KB or more")
            if any(line in self._not_utf8 for line in lines):
                return first, FieldError(
                    "line", None, "is not UTF-8 text: save the file as UTF-8 (Excel: CSV UTF-8)"
                )
            if any(cell.strip() for cell in cells):
                return first, cells

    def _report(self, cells: list[str] | FieldError) -> SaleReport | FieldError:
        if isinstance(cells, FieldError):
            return cells
        if len(cells) > len(self.columns):
            return FieldError("line", len(cells), f"has more than {len(self.columns)} columns")
        for name, cell in zip(self.columns, cells, strict=False):
            if len(cell) > MAX_CELL_CHARS:
                return FieldError(name, cell[:40] + "...", f"must be at most {MAX_CELL_CHARS} characters")
        return SaleReport(**dict(zip(self.columns, cells, strict=False)))


def record_csv(
    session: Session, advertiser_id: int, upload: CsvFile, channel: str
) -> Iterator[list[LineOutcome]]:
    """Records the file chunk by chunk, committing each; yields each chunk's outcomes once committed."""
    chunk: list[tuple[int, SaleReport | FieldError]] = []
    for row in upload.rows():
        chunk.append(row)
        if len(chunk) == CHUNK_LINES:
            yield _record_chunk(session, advertiser_id, chunk, channel)
            chunk = []
    if chunk:
        yield _record_chunk(session, advertiser_id, chunk, channel)


def _record_chunk(
    session: Session, advertiser_id: int, chunk: list[tuple[int, SaleReport | FieldError]], channel: str
) -> list[LineOutcome]:
    good = [report for _, report in chunk if isinstance(report, SaleReport)]
    outcomes = iter(record_or_restate(session, advertiser_id, good, channel))
    return [
        LineOutcome(line, Rejected(report) if isinstance(report, FieldError) else next(outcomes))
        for line, report in chunk
    ]


class _Lines:
    """The csv reader's lines, numbered as the file's, with the current record's lines kept (bounded by the
    reader's cell limit) so that those after a broken first line can be handed out again."""

    def __init__(self, source: Iterator[str]) -> None:
        self._source = source
        self._again: deque[str] = deque()
        self.number = 0  # of the last line handed out
        self.taken: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._again.popleft() if self._again else next(self._source)
        self.number += 1
        self.taken.append(line)
        return line

    def push_back(self, lines: list[str]) -> None:
        self._again.extendleft(reversed(lines))
        self.number -= len(lines)


def _decoded_lines(stream: Readable, not_utf8: set[int], too_long: set[int]) -> Iterator[str]:
    """UTF-8 lines (a byte-order mark dropped) from anything with `readline`; a line that is not UTF-8 is
    decoded with its bad bytes replaced and its number added to `not_utf8`; a line longer than
    MAX_LINE_BYTES is handed out empty (it is never read whole) and its number added to `too_long`.

    Only `readline` is asked of the stream: gunicorn's request body offers no `readable()`, so it cannot be
    wrapped in io.TextIOWrapper.
    """
    for number, raw in enumerate(_split_lines(stream), start=1):
        if raw is None:
            too_long.add(number)
            yield "\n"
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            not_utf8.add(number)
            line = raw.decode("utf-8", "replace")
        if number == 1:
            line = line.removeprefix("\ufeff")
        yield line


def _split_lines(stream: Readable) -> Iterator[bytes | None]:
    """Lines ended by LF, CRLF or a lone CR (old Mac and Excel exports), each with its line end, which the
    csv reader keeps inside a quoted cell; None for a line longer than MAX_LINE_BYTES.

    `readline` stops at LF only, so a CR-only file comes in MAX_LINE_BYTES pieces: the lines they end are cut
    out and the unfinished rest waits for the next piece. A line that reaches MAX_LINE_BYTES unfinished is
    read on to its end and dropped, so that memory stays bounded whatever the file holds and the lines after
    it keep their numbers (its pieces were once handed out as lines of their own).
    """
    pending = b""
    skipping = False  # inside a line too long to keep
    after_cr = False  # the last piece ended a line with CR: an LF starting this one belongs to it
    while piece := stream.readline(MAX_LINE_BYTES):
        if after_cr and piece.startswith(b"\n"):
            piece = piece[1:]
        after_cr = False
        pending += piece
        start = 0
        for end in _LINE_END.finditer(pending):
            if end.end() == len(pending) and end.group() == b"\r":
                if not skipping:
                    break  # the LF of a CRLF may start the next piece
                after_cr = True
            if skipping:
                yield None
                skipping = False
            else:
                yield pending[start : end.end()]
            start = end.end()
        pending = pending[start:]
        if pending.endswith(b"\r") and not skipping:
            # A whole line, kept until the next read says whether an LF follows; unless it is too long.
            if len(pending) > MAX_LINE_BYTES:
                yield None
                after_cr = True
                pending = b""
        elif len(pending) >= MAX_LINE_BYTES or (skipping and pending):
            skipping = True
            pending = b""
    if skipping:
        yield None
    elif pending:
        yield pending


def _looks_like_header(cells: list[str]) -> bool:
    names = [cell.strip().lower() for cell in cells]
    return bool(names) and names[0] in FIELD_NAMES and not any(cell.strip().isdigit() for cell in cells)


def _header_columns(cells: list[str]) -> tuple[str, ...]:
    names = tuple(cell.strip().lower() for cell in cells)
    for name in names:
        if name not in FIELD_NAMES:
            raise FieldError("header", name, f"is not a column; known: {', '.join(FIELD_NAMES)}")
    if len(set(names)) != len(names):
        raise FieldError("header", ",".join(names), "names a column twice")
    for required in REQUIRED_COLUMNS:
        if required not in names:
            raise FieldError("header", ",".join(names), f"must have a {required} column")
    # A validation file may give only the new status; a line without an amount cannot be a new sale.
    if "sale_amount" not in names and "status" not in names:
        raise FieldError("header", ",".join(names), "must have a sale_amount column (or a status column)")
    return names
