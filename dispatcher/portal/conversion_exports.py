"""Conversions as files: our CSV, and trackers' manual-upload formats for recovering what postbacks missed.

ClickFlare's manual conversion upload takes one conversion per line, no header:
`click_id,payout,transaction_id,conversion_type,timestamp`. The click id is the tracker's own, which the
publisher passed to us in one of the sub ids (they name which); payout is our commission; the transaction id
is the `#txid#` the sale's first postback carried, so a conversion the tracker did get is de-duplicated, not
counted twice. Declined and reversed sales earn nothing and are always left out (an uploaded line would add
its payout); lines without the click id are left out too (a tracker cannot match them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime

from flask import Response

from dispatcher.csv_cells import csv_line, safe_cell
from dispatcher.db import Database
from dispatcher.models.ledger import TransactionStatus
from dispatcher.portal.conversions import SUB_IDS, Conversion, Filters, as_json, every, in_units
from dispatcher.validation import FieldError

FILES = ("csv", "clickflare")
FORMATS = ("json", *FILES)
CSV_COLUMNS = (
    "sales_id",
    "txid",
    "order_number",
    "program_id",
    "program_name",
    "traffic_source_id",
    "event",
    "status",
    "sale_amount",
    "commission",
    "currency",
    *SUB_IDS,
    "event_time",
    "recorded_at",
    "postbacks",
)
EARNING = (TransactionStatus.PENDING.value, TransactionStatus.APPROVED.value)


def export_format(args: Mapping[str, str], *, files_only: bool = False) -> str:
    """`json` (a page: the API's default), `csv` or `clickflare`; `files_only` where a file must be sent."""
    allowed = FILES if files_only else FORMATS
    chosen = (args.get("format") or ("csv" if files_only else "json")).strip()
    if chosen not in allowed:
        raise FieldError("format", chosen, f"must be one of {', '.join(allowed)}")
    return chosen


def click_id_field(args: Mapping[str, str]) -> str:
    """Which sub id holds the tracker's click id (`click_id=fobs`..`fobs5`, default fobs)."""
    chosen = (args.get("click_id") or "fobs").strip()
    if chosen not in SUB_IDS:
        raise FieldError("click_id", chosen, f"must be one of {', '.join(SUB_IDS)}")
    return chosen


def csv_lines(conversions: Iterable[Conversion]) -> Iterator[str]:
    yield csv_line(CSV_COLUMNS)
    for conversion in conversions:
        shaped = as_json(conversion)
        row = {**shaped, **shaped.pop("sub_ids"), "postbacks": shaped["postbacks"]["outcome"]}
        yield csv_line(safe_cell(row[column]) for column in CSV_COLUMNS)


def clickflare_lines(conversions: Iterable[Conversion], click_id: str) -> Iterator[str]:
    for conversion in conversions:
        tracker_click = conversion.sub_ids.get(click_id)
        # Declined and reversed sales earn nothing: a line for one would add its payout to the tracker.
        if not tracker_click or conversion.status not in EARNING:
            continue
        yield csv_line(
            (
                tracker_click,  # read by the tracker, not a spreadsheet: sent as the publisher passed it
                in_units(conversion.commission, conversion.currency),
                conversion.txid,
                conversion.event,
                # Whole seconds and the offset, as ClickFlare's example writes it; a fraction may not parse.
                conversion.event_time.astimezone(UTC).replace(microsecond=0).isoformat(),
            )
        )


def download(database: Database, publisher_id: int, filters: Filters, args: Mapping[str, str]) -> Response:
    """The CSV or tracker file for these filters, streamed a batch at a time (long ranges fit no page).

    Its own database session, opened when the body is first read and closed when it ends: the request's is
    gone by then, and holding the request context open for the stream (`stream_with_context`) would leave it
    pushed for as long as a client does not read the body.
    """
    chosen = export_format(args, files_only=True)
    click_id = click_id_field(args) if chosen == "clickflare" else ""

    def lines() -> Iterator[str]:
        with database.session() as session:
            conversions = every(session, publisher_id, filters)
            if chosen == "clickflare":
                yield from clickflare_lines(conversions, click_id)
            else:
                yield from csv_lines(conversions)

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Response(
        lines(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="conversions-{chosen}-{stamp}.csv"'},
    )
