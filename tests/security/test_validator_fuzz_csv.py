"""Hypothesis on `POST /api/v1/transactions/batch`: hostile CSV files, as the body or as a multipart file.

Odd encodings (UTF-16, Latin-1, a BOM), NUL bytes, CR-only and CRLF line ends, broken quotes, formula cells
(`=HYPERLINK(...)`), cells over the size limit, too many columns, a header only, an empty file, bad headers.
Properties: never a 5xx; a bad header is a 400 of the error shape and writes nothing; otherwise the streamed
answer is whole JSON, one result per line, each a recorded sale (stored exactly, commission 10%) or an error
naming a column or the line; exactly the recorded lines wrote rows; in a readable file (UTF-8 or ASCII-only,
LF, CRLF or CR) every good line is recorded whatever the lines around it hold.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import example, given
from hypothesis import strategies as st

from dispatcher.ledger.reports import FIELD_NAMES
from tests.dispatcher.ledger.conftest import Network
from tests.security.fuzz_intake import check_accepted_sale, network_with_postback, new_order, stored
from tests.security.fuzz_support import (
    ANY_CHARS,
    HOSTILE_STRINGS,
    Figures,
    assert_error_shape,
    assert_names_a_field,
    backend,
    fuzz_settings,
    row_counts,
    written,
)

FIGURES = Figures("csv")
HEADERS = {
    "none": None,
    "standard": ("click_id", "order_number", "sale_amount"),
    "reordered": ("sale_amount", "click_id", "order_number"),
    "extra": ("click_id", "order_number", "sale_amount", "currency", "commission", "event_time"),
    "upper": ("CLICK_ID", " Order_Number ", "sale_amount"),
    # Refused as a whole file (400, nothing written):
    "unknown_column": ("click_id", "order", "sale_amount"),
    "twice": ("click_id", "order_number", "sale_amount", "sale_amount"),
    "no_amount": ("click_id", "order_number"),
}
BAD_HEADERS = {"unknown_column", "twice", "no_amount"}

cells = st.one_of(
    st.text(ANY_CHARS, max_size=20),
    st.sampled_from(HOSTILE_STRINGS),
    st.sampled_from(['=HYPERLINK("http://evil.example","click")', '"', '""', 'a"b', "\r", "\n", "x" * 5000]),
)
good_amounts = st.decimals(places=2, min_value=0, max_value=Decimal("99999999.99")).map(str)
lines = st.one_of(
    st.tuples(st.just("good"), good_amounts),
    st.tuples(st.just("cells"), st.lists(cells, min_size=1, max_size=9)),
    st.tuples(st.just("raw"), st.text(ANY_CHARS, max_size=60)),  # not even CSV-quoted
    st.tuples(st.just("blank"), st.sampled_from(["", " ", ",,,"])),
)
files = st.fixed_dictionaries(
    {
        "header": st.sampled_from(sorted(HEADERS)),
        "lines": st.lists(lines, max_size=6),
        "encoding": st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]),
        "ending": st.sampled_from(["\n", "\r\n", "\r"]),
        "nul": st.booleans(),
        "multipart": st.booleans(),
    }
)


@pytest.fixture(scope="module", autouse=True)
def _print_figures() -> Iterator[None]:
    yield
    print(FIGURES.report())


@pytest.fixture
def network(app: Flask, client: FlaskClient, database_url: str) -> Network:
    return network_with_postback(app, client)


def _row(columns: tuple[str, ...], values: dict[str, str]) -> list[str]:
    return [values.get(column.strip().lower(), "") for column in columns]


def _build(network: Network, spec: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The file's bytes and its good lines' order numbers -> amounts (clicks made here, before counting)."""
    header = HEADERS[spec["header"]]
    columns = header or ("click_id", "order_number", "sale_amount")
    text = io.StringIO()
    writer = csv.writer(text, lineterminator=spec["ending"])
    if header:
        writer.writerow(header)
    good: dict[str, str] = {}
    for kind, value in spec["lines"]:
        if kind == "good":
            order = new_order()
            good[order] = value
            writer.writerow(
                _row(columns, {"click_id": network.click(), "order_number": order, "sale_amount": value})
            )
        elif kind == "cells":
            cells = [cell.replace("\x00", "") if not spec["nul"] else cell for cell in value]
            writer.writerow(cells)
        else:
            text.write(value + spec["ending"])
    # UTF-8 files carry a lone surrogate as the bytes a broken exporter writes (ED A0 80); others as "?".
    errors = "surrogatepass" if spec["encoding"].startswith("utf-8") else "replace"
    return text.getvalue().encode(spec["encoding"], errors=errors), good


def _readable(spec: dict[str, Any], good: dict[str, str]) -> bool:
    """Files whose good lines must all be recorded: decodable as UTF-8, whatever their line ends (LF, CRLF or
    CR, and a lone CR or LF inside an unquoted cell is a line end too)."""
    if spec["encoding"] == "utf-16":
        return False
    # An unquoted line that starts a quoted cell runs on into the next lines, as CSV says it must.
    return not any(kind == "raw" and '"' in value for kind, value in spec["lines"])


def _upload(network: Network, data: bytes, multipart: bool) -> Any:
    auth = {"Authorization": f"Bearer {network.api_key}"}
    if multipart:
        return network.client.post(
            "/api/v1/transactions/batch",
            data={"file": (io.BytesIO(data), "sales.csv")},
            headers=auth,
            content_type="multipart/form-data",
        )
    return network.client.post(
        "/api/v1/transactions/batch", data=data, headers={**auth, "Content-Type": "text/csv"}
    )


@fuzz_settings
@given(spec=files)
@example(
    spec={
        "header": "standard",
        "lines": [],
        "encoding": "utf-8",
        "ending": "\n",
        "nul": False,
        "multipart": False,
    }
)
@example(
    spec={"header": "none", "lines": [], "encoding": "utf-8", "ending": "\n", "nul": False, "multipart": True}
)
@example(
    spec={
        "header": "standard",
        "lines": [("cells", ["x" * 5000]), ("good", "1.00"), ("cells", ["a"] * 9), ("good", "2.50")],
        "encoding": "utf-8-sig",
        "ending": "\r\n",
        "nul": False,
        "multipart": False,
    }
)
@example(
    spec={
        "header": "none",
        "lines": [("cells", ['=HYPERLINK("http://x")', "\x00", "1"]), ("good", "3.00")],
        "encoding": "utf-8",
        "ending": "\n",
        "nul": True,
        "multipart": True,
    }
)
@example(  # CR-only line ends (old Mac/Excel exports) were one unreadable line
    spec={
        "header": "standard",
        "lines": [("good", "1.00"), ("cells", ["a\nb", "1"]), ("good", "2.00")],
        "encoding": "utf-8",
        "ending": "\r",
        "nul": False,
        "multipart": False,
    }
)
@example(  # a lone CR in an unquoted cell of an LF file ends that line
    spec={
        "header": "none",
        "lines": [("cells", ["x\ry", "\ud800"]), ("good", "4.00"), ("raw", "\ud800,\r,")],
        "encoding": "utf-8",
        "ending": "\n",
        "nul": False,
        "multipart": True,
    }
)
def test_a_hostile_csv_records_exactly_its_good_lines_and_reports_the_others(
    network: Network, database_url: str, spec: dict[str, Any]
) -> None:
    case = FIGURES.count("csv_upload", backend(database_url))
    data, good = _build(network, spec)
    before = row_counts(network.app)

    response = _upload(network, data, spec["multipart"])
    response.get_data()  # the answer is streamed: the lines are recorded as it is read

    after = row_counts(network.app)
    assert response.status_code in (200, 400), response.get_data(as_text=True)[:500]
    if response.status_code == 400:
        FIGURES.outcome(case, "file refused")
        assert_names_a_field(assert_error_shape(response), {"header", "file"})
        assert written(before, after) == {}
        assert spec["header"] in BAD_HEADERS or not _readable(spec, good), response.get_json()
        return
    answer = response.get_json()
    results, summary = answer["results"], answer["summary"]
    recorded = [result for result in results if "sales_id" in result]
    assert summary == {
        "lines": len(results),
        "recorded": sum(1 for result in recorded if not result.get("duplicate")),
        "changed": 0,  # every line is a new order, or a repeat of one of the same file as it was reported
        "duplicates": sum(1 for result in recorded if result.get("duplicate")),
        "rejected": len(results) - len(recorded),
    }, answer
    assert written(before, after) == (
        {name: summary["recorded"] for name in ("transactions", "transaction_events", "deliveries")}
        if summary["recorded"]
        else {}
    )
    orders: dict[str, str] = {}
    for result in results:
        assert isinstance(result["line"], int) and result["line"] >= 1, result
        if "sales_id" in result:
            assert set(result) - {"duplicate"} == {
                "line",
                "sales_id",
                "status",
                "commission",
                "currency",
                "deliveries",
            }
            row = check_accepted_sale(network, result, _sent_for(network, result["sales_id"]))
            orders[row.order_number] = str(row.sale_amount)
        else:
            assert set(result) == {"line", "error", "fields"}, result
            assert_names_a_field(result["fields"], {*FIELD_NAMES, "line"})
    FIGURES.outcome(case, "with good lines" if good else "without good lines")
    assert spec["header"] not in BAD_HEADERS or not good or not _readable(spec, good), answer
    if _readable(spec, good) and spec["header"] not in BAD_HEADERS:
        assert {order: Decimal(orders.get(order, "-1")) for order in good} == {
            order: Decimal(amount) for order, amount in good.items()
        }, (answer, data[:2000])


def _sent_for(network: Network, sales_id: str) -> dict[str, Any]:
    """The row's own amount and order: here the oracle checks the rest (commission 10%, the currency's
    decimals, no control characters); the good lines' amounts are compared with the file at the end."""
    row, _ = stored(network, sales_id)
    return {"sale_amount": str(row.sale_amount), "order_number": row.order_number}
