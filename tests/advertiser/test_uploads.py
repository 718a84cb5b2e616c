"""CSV upload through the page: the batch API's format and semantics, progress chunk by chunk, each line's
result on the page and as a CSV file (another advertiser cannot fetch it)."""

from __future__ import annotations

import csv
import io

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from dispatcher.db import get_db
from dispatcher.models import Click, Transaction, TransactionEvent
from tests.advertiser.conftest import Shop, advertiser_log_in, report_sale

LINES = 1000


def _clicks(app: Flask, shop: Shop, count: int) -> list[str]:
    ids = [f"upl{n:05d}{shop.program_id}" for n in range(count)]
    with get_db(app).session() as session:
        session.add_all(
            Click(click_id=click_id, program_id=shop.program_id, publisher_id=shop.publisher_id)
            for click_id in ids
        )
        session.commit()
    return ids


def _upload(client: FlaskClient, token: str, text: str, name: str = "sales.csv") -> tuple[int, str]:
    response = client.post(
        "/advertiser/upload",
        data={"csrf_token": token, "file": (io.BytesIO(text.encode()), name)},
        content_type="multipart/form-data",
    )
    return response.status_code, response.get_data(as_text=True)


def test_a_thousand_status_lines_change_every_sale_with_progress_and_downloadable_results(
    app: Flask, client: FlaskClient, adv: FlaskClient, shop: Shop, other_shop: Shop, csrf: str
) -> None:
    clicks = _clicks(app, shop, LINES)
    sales = "click_id,order_number,sale_amount\n" + "".join(
        f"{c},UP-{n},10.00\n" for n, c in enumerate(clicks)
    )
    recorded = client.post(
        "/api/v1/transactions/batch", data=sales, content_type="text/csv", headers=shop.auth
    )
    assert recorded.get_json()["summary"]["recorded"] == LINES
    approvals = "order_number,status\n" + "".join(f"UP-{n},approved\n" for n in range(LINES - 1))
    approvals += "UP-NOPE,approved\n"  # unknown: a rejected line, the others go on

    status, page = _upload(adv, csrf, approvals)

    assert status == 200
    assert page.count('class="upload-chunk"') == 2  # 500 lines at a time, each shown as it is done
    assert 'data-done="500"' in page and f'data-done="{LINES}"' in page
    assert 'id="count-changed">999<' in page and 'id="count-rejected">1<' in page
    with get_db(app).session() as session:
        approved = select(func.count()).where(Transaction.status == "approved")
        assert session.scalar(approved) == LINES - 1
        assert session.scalar(select(func.count()).where(TransactionEvent.kind == "approved")) == LINES - 1
    link = page.split('id="download-results"')[0].rsplit('href="', 1)[1].split('"')[0]
    download = adv.get(link)
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert download.mimetype == "text/csv"
    assert len(rows) == LINES
    assert rows[0]["line"] == "2" and rows[0]["result"] == "changed" and rows[0]["status"] == "approved"
    # As in the batch API: a line without an amount changes a recorded order, and this one is not recorded.
    assert rows[-1]["result"] == "rejected"
    assert rows[-1]["error"].startswith("order_number: is not a recorded sale of your programs")
    theirs = app.test_client()
    advertiser_log_in(theirs, other_shop.email)
    assert theirs.get(link).status_code == 404


def test_an_invalid_transition_in_a_line_names_the_current_status(
    client: FlaskClient, adv: FlaskClient, shop: Shop, csrf: str
) -> None:
    report_sale(client, shop, "UP-DECLINED")
    _upload(adv, csrf, "order_number,status\nUP-DECLINED,declined\n")

    status, page = _upload(adv, csrf, "order_number,status\nUP-DECLINED,approved\n")

    assert status == 200
    assert "current status: declined" in page


def test_a_bad_header_a_missing_file_and_hostile_cells(adv: FlaskClient, csrf: str) -> None:
    header_status, header_page = _upload(adv, csrf, "order_number,<img src=x onerror=alert(1)>\n")
    missing = adv.post("/advertiser/upload", data={"csrf_token": csrf}, content_type="multipart/form-data")
    hostile_status, hostile_page = _upload(
        adv, csrf, "click_id,order_number,sale_amount\n<b>x</b>,=cmd(),1\n"
    )

    assert header_status == 400 and "header" in header_page and "&lt;img src=x" in header_page
    assert missing.status_code == 400 and "file" in missing.get_data(as_text=True)
    assert (
        hostile_status == 200 and "<b>x</b>" not in hostile_page and 'id="count-rejected">1<' in hostile_page
    )


def test_downloaded_results_never_start_a_cell_with_a_formula(
    app: Flask, adv: FlaskClient, shop: Shop, csrf: str
) -> None:
    [click] = _clicks(app, shop, 1)
    _, page = _upload(adv, csrf, f"click_id,order_number,sale_amount\n{click},=HYPERLINK(1),-5\n")

    link = page.split('id="download-results"')[0].rsplit('href="', 1)[1].split('"')[0]
    rows = list(csv.reader(io.StringIO(adv.get(link).get_data(as_text=True))))

    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
