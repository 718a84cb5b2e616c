"""POST /api/v1/transactions/batch: a CSV of missed sales; good lines kept, bad lines reported by number."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from dispatcher.ledger import SaleReport
from dispatcher.ledger.csv_batch import MAX_LINE_BYTES, CsvFile
from dispatcher.models import Click, Delivery, Program, Transaction
from dispatcher.validation import FieldError
from tests.dispatcher.ledger.conftest import Network


def upload(network: Network, text: str, *, multipart: bool = False, api_key: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {api_key or network.api_key}"}
    if multipart:
        data = {"file": (io.BytesIO(text.encode()), "sales.csv")}
        return network.client.post("/api/v1/transactions/batch", data=data, headers=headers)
    return network.client.post(
        "/api/v1/transactions/batch", data=text.encode(), content_type="text/csv", headers=headers
    )


def results(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.data[:500]
    body: dict[str, Any] = json.loads(response.data)
    return body


def count_sales(network: Network) -> int:
    with network.session() as session:
        return int(session.scalar(select(func.count()).select_from(Transaction)) or 0)


@pytest.mark.parametrize(
    "header", ["", "click_id,order_number,sale_amount,currency,event,status,event_time\n"]
)
@pytest.mark.parametrize("multipart", [False, True])
def test_good_lines_are_kept_and_bad_lines_reported_with_their_line_numbers(
    network: Network, header: str, multipart: bool
) -> None:
    network.postback()
    a, b, c = network.click(), network.click(), network.click()
    first = 2 if header else 1
    lines = [
        f"{a},A-1,100.00",
        f"{b},A-2,19.999",
        "",
        "nobody,A-3,5.00",
        f"{c},A-4,50.00,EUR,lead,approved,",
        f"{a},A-1,100.00",
        f"{a},A-5,1,USD,sale,pending,,extra",
    ]

    body = results(upload(network, header + "\n".join(lines) + "\n", multipart=multipart))

    by_line = {row["line"]: row for row in body["results"]}
    assert sorted(by_line) == [first, first + 1, first + 3, first + 4, first + 5, first + 6]
    assert by_line[first]["commission"] == "10.00" and "error" not in by_line[first]
    assert by_line[first + 1]["fields"] == {"sale_amount": "must have at most 2 decimals for USD"}
    assert by_line[first + 3]["fields"] == {"click_id": "is not a click of this network"}
    assert (by_line[first + 4]["currency"], by_line[first + 4]["status"]) == ("EUR", "approved")
    assert by_line[first + 5] == {**by_line[first], "line": first + 5, "duplicate": True}
    assert by_line[first + 6]["fields"] == {"line": "has more than 7 columns"}
    assert body["summary"] == {"lines": 6, "recorded": 2, "changed": 0, "duplicates": 1, "rejected": 3}
    assert count_sales(network) == 2
    with network.session() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 2


def test_a_header_may_reorder_columns_and_add_clickless_ones(network: Network) -> None:
    with network.session() as session:
        session.execute(update(Program).values(allow_clickless=True, allow_advertiser_commission=True))
    text = (
        "Order_Number,sale_amount,publisher_id,traffic_source_id,commission\n"
        f"OFF-1,30.00,{network.publisher_id},{network.source_id},2.00\n"
    )

    body = results(upload(network, text))

    assert body["results"] == [
        {
            "line": 2,
            **{k: body["results"][0][k] for k in ("sales_id",)},
            "status": "pending",
            "commission": "2.00",
            "currency": "USD",
            "deliveries": 0,
        }
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("click_id,order_number,amount\n", "header: is not a column"),
        ("click_id,order_number\nx,1\n", "header: must have a sale_amount column"),
        ("click_id,order_number,sale_amount,order_number\n", "header: names a column twice"),
    ],
)
def test_a_bad_header_refuses_the_whole_file(network: Network, text: str, problem: str) -> None:
    response = upload(network, text)

    assert response.status_code == 400
    assert response.json is not None and response.json["error"].startswith(problem)


def test_an_upload_needs_the_api_key(network: Network) -> None:
    response = upload(network, "x,1,1\n", api_key="adv_nope")

    assert response.status_code == 401


def test_a_multipart_upload_without_a_file_is_400(network: Network) -> None:
    response = network.client.post(
        "/api/v1/transactions/batch",
        data={"other": "x"},
        content_type="multipart/form-data",
        headers={"Authorization": f"Bearer {network.api_key}"},
    )

    assert response.status_code == 400
    assert response.json is not None and response.json["fields"] == {
        "file": "is required (curl -F file=@sales.csv)"
    }


def test_an_empty_file_has_no_results(network: Network) -> None:
    assert results(upload(network, ""))["summary"] == {
        "lines": 0,
        "recorded": 0,
        "changed": 0,
        "duplicates": 0,
        "rejected": 0,
    }


def test_uploading_the_same_file_again_records_nothing_new(network: Network) -> None:
    network.postback()
    text = "".join(f"{network.click()},R-{n},10.00\n" for n in range(5))
    results(upload(network, text))

    again = results(upload(network, text))

    assert again["summary"] == {"lines": 5, "recorded": 0, "changed": 0, "duplicates": 5, "rejected": 0}
    with network.session() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 5


def test_a_50000_line_file_completes_in_one_streamed_request(network: Network) -> None:
    lines = 50_000
    network.postback()
    now = datetime.now(UTC)
    with network.session() as session:
        session.execute(
            insert(Click),
            [
                {
                    "click_id": f"bulk-{n}",
                    "program_id": network.program_id,
                    "publisher_id": network.publisher_id,
                    "traffic_source_id": network.source_id,
                    "created_at": now,
                }
                for n in range(lines)
            ],
        )
    bad = {n for n in range(0, lines, 1000)}  # one bad line per thousand
    text = "click_id,order_number,sale_amount\n" + "".join(
        f"bulk-{n},BULK-{n},{'oops' if n in bad else '12.50'}\n" for n in range(lines)
    )

    started = time.monotonic()
    response = upload(network, text)
    body = results(response)
    elapsed = time.monotonic() - started

    assert body["summary"] == {
        "lines": lines,
        "recorded": lines - len(bad),
        "changed": 0,
        "duplicates": 0,
        "rejected": len(bad),
    }
    assert body["results"][-1]["line"] == lines + 1
    assert count_sales(network) == lines - len(bad)
    with network.session() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == lines - len(bad)
    # Speed is the benchmarks' business (shared machines make timed asserts flaky); this shows the figure.
    print(f"{lines} lines in {elapsed:.1f} s")


class ReadlineOnly:
    """The shape of gunicorn's request body: `readline` and `read`, no `readable()`, no `close()`."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readline(self, size: int = -1, /) -> bytes:
        return self._data.readline(size)


def test_an_upload_is_read_with_readline_alone_as_gunicorn_gives_it() -> None:
    raw = b'\xef\xbb\xbfclick_id,order_number,sale_amount\r\nc1,"A,1",2.50\r\n\r\nc2,A-\xff,1\r\n'

    upload = CsvFile(ReadlineOnly(raw))

    assert upload.has_header
    first, second = list(upload.rows())
    assert first == (2, SaleReport(click_id="c1", order_number="A,1", sale_amount="2.50"))
    assert second[0] == 4 and isinstance(second[1], FieldError)  # \xff is not UTF-8: refused, not replaced
    assert str(second[1]) == "line: is not UTF-8 text: save the file as UTF-8 (Excel: CSV UTF-8)"


class CountingReadline(ReadlineOnly):
    """Counts the bytes handed out, to show how much of an upload was read for the rows taken so far."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.handed = 0

    def readline(self, size: int = -1, /) -> bytes:
        piece = super().readline(size)
        self.handed += len(piece)
        return piece


def _cr_lines(count: int, start: int = 0) -> bytes:
    return b"".join(f"c{n},CR-{n:06},1.00\r".encode() for n in range(start, start + count))


def test_a_cr_only_upload_is_streamed_not_read_whole() -> None:
    stream = CountingReadline(b"click_id,order_number,sale_amount\r" + _cr_lines(50_000))

    rows = CsvFile(stream).rows()
    first = next(rows)

    assert first == (2, SaleReport(click_id="c0", order_number="CR-000000", sale_amount="1.00"))
    assert stream.handed <= 2 * MAX_LINE_BYTES < 50_000 * 20  # the file is about 1 MB
    rest = list(rows)
    assert len(rest) == 49_999 and rest[-1] == (
        50_001,
        SaleReport(click_id="c49999", order_number="CR-049999", sale_amount="1.00"),
    )


def test_a_crlf_split_across_two_reads_is_one_line_end() -> None:
    header = b"click_id,order_number,sale_amount\r"
    lines = _cr_lines(3000)
    # readline stops at LF or after MAX_LINE_BYTES: put the CR of a CRLF last in the first read.
    last = b"c-last,CRLF-"
    pad = MAX_LINE_BYTES - len(header) - len(lines) - len(last) - len(b",1.00") - 1
    assert 0 < pad < 4000  # a cell is at most MAX_CELL_CHARS
    data = header + lines + last + b"x" * pad + b",1.00\r\nc-after,AFTER,2.00\r\n"
    assert data[MAX_LINE_BYTES - 1 : MAX_LINE_BYTES + 1] == b"\r\n"

    rows = list(CsvFile(ReadlineOnly(data)).rows())

    assert [number for number, _ in rows] == list(range(2, 3000 + 4))  # no line made of the LF alone
    assert rows[-1] == (3003, SaleReport(click_id="c-after", order_number="AFTER", sale_amount="2.00"))
    assert rows[-2][1] == SaleReport(click_id="c-last", order_number="CRLF-" + "x" * pad, sale_amount="1.00")


def test_line_ends_inside_a_quoted_cell_stay_in_the_cell_whatever_the_files_line_ends() -> None:
    data = b'click_id,order_number,sale_amount\rc1,"A\rB\r\nC\nD",1\rc2,E,2\r'

    rows = list(CsvFile(ReadlineOnly(data)).rows())

    assert rows == [  # the record spanning lines 2-5 is named by its first line
        (2, SaleReport(click_id="c1", order_number="A\rB\r\nC\nD", sale_amount="1")),
        (6, SaleReport(click_id="c2", order_number="E", sale_amount="2")),
    ]


def test_a_cell_too_long_refuses_its_line_and_never_swallows_the_next(network: Network) -> None:
    """The csv reader used to stop mid-row at a long cell; the rest of a row spanning lines (a quoted cell
    with a line break) was then read as an opening quote that swallowed the next good line."""
    a, b = network.click(), network.click()
    lines = [
        f'{a},{"L" * 5000},"1\n2"',  # a long order number, then a cell holding a line break
        f"{b},B-1,10.00",
    ]

    body = results(upload(network, "\n".join(lines) + "\n"))

    [long_line, good] = body["results"]
    assert long_line["fields"] == {"order_number": "must be at most 4096 characters"}
    assert "error" not in good and good["line"] == 3
    assert count_sales(network) == 1


def shown(rows: list[tuple[int, SaleReport | FieldError]]) -> list[tuple[int, SaleReport | str]]:
    """Errors as their messages (a FieldError is an exception: two alike do not compare equal)."""
    return [(number, str(row) if isinstance(row, FieldError) else row) for number, row in rows]


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_a_line_too_long_to_read_is_one_refused_line_and_the_next_keep_their_numbers(end: str) -> None:
    """Its 64 KB pieces were once handed out as lines of their own: each refused, and every line after it
    named by a number that was not its own."""
    long_line = "c-long,LONG," + '"' + "x" * (3 * MAX_LINE_BYTES) + end  # an unclosed quote too
    text = end.join(["click_id,order_number,sale_amount", "c1,A-1,1.00", ""]) + long_line
    text += end.join(["c2,A-2,2.00", "c3,A-3,3.00", ""])

    rows = list(CsvFile(ReadlineOnly(text.encode())).rows())

    assert shown(rows) == [
        (2, SaleReport(click_id="c1", order_number="A-1", sale_amount="1.00")),
        (3, "line: is too long: 64 KB or more"),
        (4, SaleReport(click_id="c2", order_number="A-2", sale_amount="2.00")),
        (5, SaleReport(click_id="c3", order_number="A-3", sale_amount="3.00")),
    ]


def test_a_too_long_line_whose_crlf_is_split_across_two_reads_is_one_line() -> None:
    # readline reads MAX_LINE_BYTES at most: the long line's CR ends one read and its LF starts the next.
    data = b"x" * (2 * MAX_LINE_BYTES - 1) + b"\r\nc1,A-1,1.00\r\n"
    assert data[2 * MAX_LINE_BYTES - 1 : 2 * MAX_LINE_BYTES + 1] == b"\r\n"

    rows = list(CsvFile(ReadlineOnly(data)).rows())

    assert shown(rows) == [
        (1, "line: is too long: 64 KB or more"),
        (2, SaleReport(click_id="c1", order_number="A-1", sale_amount="1.00")),
    ]


def test_a_long_line_whose_cr_ends_a_read_leaves_the_next_lines_alone() -> None:
    # A CR-only file: the long line's CR is the last byte of a read (it may be a CRLF's), the next line after.
    short = b"x" * (MAX_LINE_BYTES - 1) + b"\r"
    too_long = b"y" * (MAX_LINE_BYTES + 1) + b"\r"
    for first, refused in ((short, "click_id: must be at most 4096"), (too_long, "line: is too long")):
        rows = shown(list(CsvFile(ReadlineOnly(first + b"c1,A-1,1.00\rc2,A-2,2.00\r")).rows()))

        assert [number for number, _ in rows] == [1, 2, 3]
        assert str(rows[0][1]).startswith(refused)
        assert rows[1:] == [
            (2, SaleReport(click_id="c1", order_number="A-1", sale_amount="1.00")),
            (3, SaleReport(click_id="c2", order_number="A-2", sale_amount="2.00")),
        ]


def test_a_too_long_last_line_without_a_line_end_is_refused() -> None:
    rows = list(CsvFile(ReadlineOnly(b"c1,A-1,1.00\n" + b"y" * (MAX_LINE_BYTES + 10))).rows())

    assert shown(rows) == [
        (1, SaleReport(click_id="c1", order_number="A-1", sale_amount="1.00")),
        (2, "line: is too long: 64 KB or more"),
    ]


def test_a_line_that_is_not_utf8_is_refused_and_never_merges_two_orders(network: Network) -> None:
    # Latin-1, as spreadsheets often export: "Café-1" and "Cafè-1" read with bad bytes replaced were one
    # order ("Caf\ufffd-1"), and the second line adjusted the first one's sale.
    click = network.click()
    data = f"click_id,order_number,sale_amount\n{click},Café-1,5.00\n{click},Cafè-1,6.00\n{click},ok-1,7.00\n"
    response = network.client.post(
        "/api/v1/transactions/batch",
        data=data.encode("latin-1"),
        content_type="text/csv",
        headers={"Authorization": f"Bearer {network.api_key}"},
    )

    body = results(response)
    by_line = {row["line"]: row for row in body["results"]}
    for line in (2, 3):
        assert by_line[line]["error"] == "line: is not UTF-8 text: save the file as UTF-8 (Excel: CSV UTF-8)"
    assert "sales_id" in by_line[4]
    assert body["summary"] == {"lines": 3, "recorded": 1, "changed": 0, "duplicates": 0, "rejected": 2}
    with network.session() as session:
        assert list(session.scalars(select(Transaction.order_number))) == ["ok-1"]


def test_an_unclosed_quote_is_an_error_of_its_line_not_a_cell_that_swallows_the_file(
    network: Network,
) -> None:
    click = network.click()
    body = results(
        upload(network, f'{click},Q-1,1.00\n{click},"Q-2,2.00\n{click},Q-3,3.00\n{click},Q-4,4.00\n')
    )

    by_line = {row["line"]: row for row in body["results"]}
    assert "sales_id" in by_line[1] and "sales_id" in by_line[3] and "sales_id" in by_line[4], body
    assert by_line[2]["error"].startswith("line: is not readable CSV")
    assert body["summary"] == {"lines": 4, "recorded": 3, "changed": 0, "duplicates": 0, "rejected": 1}


def test_json_sent_to_the_csv_route_is_refused_naming_the_content_type(network: Network) -> None:
    response = network.client.post(
        "/api/v1/transactions/batch",
        json={"click_id": network.click(), "order_number": "J-1", "sale_amount": "1.00"},
        headers={"Authorization": f"Bearer {network.api_key}"},
    )

    assert response.status_code == 400
    assert response.json is not None and list(response.json["fields"]) == ["Content-Type"]
    assert "POST /api/v1/transactions" in response.json["error"]
    assert count_sales(network) == 0


def test_a_json_body_that_is_not_utf8_is_named_as_such(network: Network) -> None:
    body = '{"click_id": "x", "order_number": "Café", "sale_amount": "1.00"}'.encode("latin-1")
    response = network.client.post(
        "/api/v1/transactions",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {network.api_key}"},
    )

    assert response.status_code == 400
    assert response.json == {
        "error": "body: is not UTF-8 text: send JSON in UTF-8",
        "fields": {"body": "is not UTF-8 text: send JSON in UTF-8"},
    }
