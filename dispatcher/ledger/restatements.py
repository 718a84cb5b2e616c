"""Repeated S2S and CSV reports that restate a recorded order with another status or amount.

Platforms that can only fire a URL, and networks' monthly validation files, approve, decline and reverse by
reporting the order again with its new status (or amount). `record_sales(..., restating=True)` answers such a
report as a duplicate of the recorded transaction; here each duplicate whose status or amount differs is
applied as a status change (`dispatcher.ledger.status.restate`: the same rules, events and postbacks as
`POST /api/v1/transactions/<sales_id>/status`). A report that restates the transaction as it is stays a
duplicate. A status the report leaves out is no change: re-firing the original sale's URL is a duplicate.

A validation file names orders, not clicks: a report with neither a click id nor a publisher
(`record_or_restate`) is looked up by its order number (event, and program when given) among the
advertiser's transactions first, and only recorded as a new sale when no such order is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.ledger import fields
from dispatcher.ledger.errors import StatusConflict
from dispatcher.ledger.intake import Key, existing, record_sales
from dispatcher.ledger.reports import EVENTS, ORDER_NUMBER_LENGTH, SaleReport
from dispatcher.ledger.results import Outcome, Recorded, Rejected, Restated
from dispatcher.ledger.status import StatusChange, restate
from dispatcher.models import EventType, Program, Transaction
from dispatcher.validation import FieldError


def record_or_restate(
    session: Session, advertiser_id: int, reports: Sequence[SaleReport], channel: str
) -> list[Outcome]:
    """`record_sales(..., restating=True)` then `restated`, with reports that name only an order (no click,
    no publisher) taken as that recorded order when there is one. One outcome per report, in order."""
    named = orders_named(session, advertiser_id, reports)
    keys = [key for key in named.values() if not isinstance(key, FieldError)]
    known = existing(session, keys) if keys else {}
    rest = [index for index in range(len(reports)) if index not in named]
    unnamed = [reports[index] for index in rest]
    recorded = record_sales(session, advertiser_id, unnamed, channel, restating=True) if rest else []
    outcomes: dict[int, Recorded | Rejected] = dict(zip(rest, recorded, strict=True))
    for index, key in named.items():
        outcomes[index] = Rejected(key) if isinstance(key, FieldError) else known[key]
    session.commit()  # the reads end before the changes write (see dispatcher.ledger.status)
    pairs = [(report, outcomes[index]) for index, report in enumerate(reports)]
    return restated(session, advertiser_id, pairs, channel)


def orders_named(
    session: Session, advertiser_id: int, reports: Sequence[SaleReport]
) -> dict[int, Key | FieldError]:
    """For each report without a click id or publisher whose order is recorded: its business key, or a
    FieldError when the order number is in several of the advertiser's programs and none is named; for one
    whose order is not recorded and that has no amount (so it is no new sale), a FieldError saying so. A
    report whose values are malformed is left out, for `record_sales` to refuse with its own words."""
    wanted: dict[int, tuple[str, str, int | None]] = {}
    for index, report in enumerate(reports):
        credited = (report.click_id, report.publisher_id, report.traffic_source_id)
        if not all(fields.is_blank(value) for value in credited):
            continue
        try:
            wanted[index] = (
                fields.text("order_number", report.order_number, max_length=ORDER_NUMBER_LENGTH),
                fields.choice("event", report.event, EVENTS, EventType.SALE.value),
                fields.optional_id("program_id", report.program_id),
            )
        except FieldError:
            continue
    if not wanted:
        return {}
    query = (
        select(Transaction.program_id, Transaction.order_number, Transaction.event_type)
        .join(Program, Program.id == Transaction.program_id)
        .where(
            Program.advertiser_id == advertiser_id,
            Transaction.order_number.in_({order for order, _, _ in wanted.values()}),
        )
    )
    recorded: dict[tuple[str, str], list[int]] = {}
    for recorded_program, order_number, event in session.execute(query):
        recorded.setdefault((order_number, event), []).append(recorded_program)
    found: dict[int, Key | FieldError] = {}
    for index, (order_number, event, program_id) in wanted.items():
        programs = [p for p in recorded.get((order_number, event), []) if program_id in (None, p)]
        if len(programs) == 1:
            found[index] = (programs[0], order_number, event)
        elif len(programs) > 1:
            listed = ", ".join(str(p) for p in sorted(programs))
            found[index] = FieldError(
                "program_id",
                None,
                f"is required: order {order_number!r} ({event}) is in several of your programs ({listed})",
            )
        elif fields.is_blank(reports[index].sale_amount):
            # Without an amount it can only change a recorded order: say that one is not recorded (as the
            # status API's 404 does), not that a new sale would need an amount.
            found[index] = FieldError(
                "order_number",
                order_number,
                f"is not a recorded {event} of your programs "
                "(without a sale amount, a report only changes a recorded order)",
            )
    return found


def restated(
    session: Session,
    advertiser_id: int,
    reported: Sequence[tuple[SaleReport, Recorded | Rejected]],
    channel: str,
) -> list[Outcome]:
    """Each report's outcome, with its duplicates' changes applied in order (each commits on its own)."""
    touched: set[str] = set()  # changed here already: what `record_sales` read of them is out of date
    outcomes: list[Outcome] = []
    for report, outcome in reported:
        if not isinstance(outcome, Recorded) or not outcome.duplicate:
            outcomes.append(outcome)
            continue
        if outcome.sales_id not in touched and not _may_differ(report, outcome):
            outcomes.append(outcome)
            continue
        result = _restate(session, advertiser_id, report, outcome, channel)
        if isinstance(result, Restated):
            touched.add(outcome.sales_id)
        outcomes.append(result)
    return outcomes


def _restate(
    session: Session, advertiser_id: int, report: SaleReport, outcome: Recorded, channel: str
) -> Outcome:
    change = StatusChange(report.status, report.sale_amount, report.commission)
    try:
        changed = restate(session, advertiser_id, outcome.sales_id, change, channel)
    except FieldError as error:
        session.rollback()
        return Rejected(error)
    except StatusConflict as conflict:
        session.rollback()
        value = report.sale_amount if conflict.field == "sale_amount" else report.status
        return Rejected(FieldError(conflict.field, value, conflict.problem), conflict.current_status)
    return outcome if changed is None else Restated(changed)


def _may_differ(report: SaleReport, recorded: Recorded) -> bool:
    """What `record_sales` read says: the report's status (if given) or amount is not the transaction's.
    A cheap first look, so a re-uploaded file is not read again line by line; `restate` decides."""
    status = report.status
    if not fields.is_blank(status) and str(status).strip().lower() != recorded.status:
        return True
    if fields.is_blank(report.sale_amount):
        return False  # no amount: no change of amount
    try:
        return fields.amount("sale_amount", report.sale_amount) != recorded.sale_amount
    except FieldError:
        return True  # the change refuses it, naming it
