"""Who gets the credit for a reported transaction: the click it names, or, without one, the publisher and
traffic source the advertiser names (only on programs that allow it).

One query for all the clicks of a batch, and two more only when some report has no click. A click keeps its
credit even if its program was paused since: the sale came from a click that was valid when it was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import FromClause, bindparam, select

from dispatcher.db import Db, fetch
from dispatcher.ledger.commission import CommissionRule
from dispatcher.ledger.outbox import (
    LIVE_POSTBACK_COLUMNS,
    PostbackFilter,
    join_live_postbacks,
    postback_filters,
)
from dispatcher.ledger.reports import CheckedReport
from dispatcher.ledger.tables import clicks, programs, publishers, traffic_sources
from dispatcher.validation import FieldError


@dataclass(frozen=True)
class ProgramTerms:
    id: int
    advertiser_id: int
    active: bool
    currency: str
    allow_clickless: bool
    rule: CommissionRule


@dataclass(frozen=True)
class Attribution:
    program: ProgramTerms
    publisher_id: int
    traffic_source_id: int | None
    click_pk: int | None = None
    click_time: datetime | None = None


_PROGRAM_COLUMNS = (
    programs.c.id.label("program_id"),
    programs.c.advertiser_id,
    programs.c.active,
    programs.c.currency,
    programs.c.commission_type,
    programs.c.commission_value,
    programs.c.allow_clickless,
    programs.c.allow_advertiser_commission,
)
_CLICK_COLUMNS = (
    clicks.c.click_id,
    clicks.c.id,
    clicks.c.created_at,
    clicks.c.publisher_id,
    clicks.c.traffic_source_id,
    *_PROGRAM_COLUMNS,
)
_CLICKS_OF = select(*_CLICK_COLUMNS).join(programs, programs.c.id == clicks.c.program_id)
# One id is looked up with `=` (a reported sale), several with IN (a batch).
_CLICK = _CLICKS_OF.where(clicks.c.click_id == bindparam("click_id"))
_CLICKS = _CLICKS_OF.where(clicks.c.click_id.in_(bindparam("click_ids", expanding=True)))
# One reported sale with a click (the API's and S2S's hot path): the click, its program and its publisher's
# live postbacks in one statement, the click's columns repeated on each postback x scope row. Ordered by
# postback id, the order deliveries are then created in.
CLICK_WITH_POSTBACKS_COLUMNS = (*_CLICK_COLUMNS, *LIVE_POSTBACK_COLUMNS)
_CLICK_WITH_POSTBACKS = (
    select(*CLICK_WITH_POSTBACKS_COLUMNS)
    .select_from(
        join_live_postbacks(
            clicks.join(programs, programs.c.id == clicks.c.program_id), clicks.c.publisher_id
        )
    )
    .where(clicks.c.click_id == bindparam("click_id"))
    .order_by(LIVE_POSTBACK_COLUMNS[0])
)


def click_with_postbacks_after(left: FromClause) -> FromClause:
    """`left` outer-joined to the click `:click_id`, its program and its publisher's live postbacks (the
    columns of `CLICK_WITH_POSTBACKS_COLUMNS`): every row of `left` is kept, with NULLs when there is no
    such click. Each join is flat (no nested join, which SQLite would copy into a temporary table first)."""
    with_click = left.outerjoin(clicks, clicks.c.click_id == bindparam("click_id")).outerjoin(
        programs, programs.c.id == clicks.c.program_id
    )
    joined: FromClause = join_live_postbacks(with_click, clicks.c.publisher_id)
    return joined


CLICK_WITH_POSTBACKS_ORDER = LIVE_POSTBACK_COLUMNS[0]
_PROGRAMS_OF = select(*_PROGRAM_COLUMNS).where(programs.c.advertiser_id == bindparam("advertiser_id"))
_SOURCES_OF = select(traffic_sources.c.id, traffic_sources.c.publisher_id, publishers.c.active).join(
    publishers, publishers.c.id == traffic_sources.c.publisher_id
)
_SOURCE = _SOURCES_OF.where(traffic_sources.c.id == bindparam("source_id"))
_SOURCES = _SOURCES_OF.where(traffic_sources.c.id.in_(bindparam("source_ids", expanding=True)))


def attribute(db: Db, advertiser_id: int, reports: Sequence[CheckedReport]) -> list[Attribution | FieldError]:
    clicks = _clicks(db, {r.click_id for r in reports if r.click_id is not None})
    clickless = [r for r in reports if r.click_id is None]
    programs = _programs_of(db, advertiser_id) if clickless else {}
    sources = _sources(db, {r.traffic_source_id for r in clickless if r.traffic_source_id is not None})
    results: list[Attribution | FieldError] = []
    for report in reports:
        try:
            if report.click_id is not None:
                results.append(_by_click(report.click_id, clicks.get(report.click_id), advertiser_id))
            else:
                results.append(_without_click(report, programs, sources))
        except FieldError as error:
            results.append(error)
    return results


@dataclass(frozen=True)
class ClickRead:
    """The rows of `CLICK_WITH_POSTBACKS_COLUMNS` for a click id, read ahead (beside the advertiser's key,
    see `dispatcher.auth.Beside`); a row with a NULL click_id, or none, when there is no such click."""

    click_id: str
    rows: Sequence[Any]


def attribute_with_postbacks(
    db: Db, advertiser_id: int, report: CheckedReport, read: ClickRead | None = None
) -> tuple[Attribution | FieldError, list[PostbackFilter]]:
    """One report with a click: its attribution, as `attribute` gives it, and the live postbacks of the
    click's publisher (`outbox.active_postbacks`), read in one statement, or taken from `read` when that is
    of the report's click."""
    assert report.click_id is not None
    if read is not None and read.click_id == report.click_id:
        rows = read.rows
    else:
        rows = fetch(db, _CLICK_WITH_POSTBACKS, {"click_id": report.click_id})
    # A read beside the key has a row without a click (NULL columns) when there is none.
    found = _click_attribution(rows[0]) if rows and rows[0].program_id is not None else None
    try:
        attribution = _by_click(report.click_id, found, advertiser_id)
    except FieldError as error:
        return error, []
    return attribution, postback_filters(rows)


def _by_click(click_id: str, found: Attribution | None, advertiser_id: int) -> Attribution:
    if found is None:
        raise FieldError("click_id", click_id, "is not a click of this network")
    if found.program.advertiser_id != advertiser_id:
        raise FieldError("click_id", click_id, "is a click on another advertiser's program")
    return found


def _without_click(
    report: CheckedReport, programs: dict[int, ProgramTerms], sources: dict[int, tuple[int, bool]]
) -> Attribution:
    program = _program_for(report, programs)
    if not program.allow_clickless:
        raise FieldError(
            "click_id", None, f"is required: program {program.id} only accepts transactions with a click"
        )
    if report.publisher_id is None:
        raise FieldError("publisher_id", None, "is required for a transaction without a click_id")
    if report.traffic_source_id is None:
        raise FieldError("traffic_source_id", None, "is required for a transaction without a click_id")
    owner, publisher_active = sources.get(report.traffic_source_id, (None, False))
    if owner != report.publisher_id:
        raise FieldError(
            "traffic_source_id",
            report.traffic_source_id,
            f"is not a traffic source of publisher {report.publisher_id}",
        )
    if not publisher_active:
        raise FieldError("publisher_id", report.publisher_id, "is not an active publisher")
    return Attribution(program, report.publisher_id, report.traffic_source_id)


def _program_for(report: CheckedReport, programs: dict[int, ProgramTerms]) -> ProgramTerms:
    if report.program_id is not None:
        program = programs.get(report.program_id)
        if program is None or not program.active:
            raise FieldError("program_id", report.program_id, "is not an active program of this advertiser")
        return program
    active = [program for program in programs.values() if program.active]
    if len(active) != 1:
        raise FieldError(
            "program_id",
            None,
            "is required for a transaction without a click_id when the advertiser has several programs",
        )
    return active[0]


def _clicks(db: Db, click_ids: set[str]) -> dict[str, Attribution]:
    if not click_ids:
        return {}
    if len(click_ids) == 1:
        found = fetch(db, _CLICK, {"click_id": next(iter(click_ids))})
    else:
        found = fetch(db, _CLICKS, {"click_ids": list(click_ids)})
    return {row.click_id: _click_attribution(row) for row in found}


def _click_attribution(row: Any) -> Attribution:
    return Attribution(
        program=_terms(row),
        publisher_id=row.publisher_id,
        traffic_source_id=row.traffic_source_id,
        click_pk=row.id,
        click_time=row.created_at,
    )


def _programs_of(db: Db, advertiser_id: int) -> dict[int, ProgramTerms]:
    rows = fetch(db, _PROGRAMS_OF, {"advertiser_id": advertiser_id})
    return {row.program_id: _terms(row) for row in rows}


def _sources(db: Db, source_ids: set[int]) -> dict[int, tuple[int, bool]]:
    """traffic source id -> (its publisher, whether that publisher is active)."""
    if not source_ids:
        return {}
    if len(source_ids) == 1:
        rows = fetch(db, _SOURCE, {"source_id": next(iter(source_ids))})
    else:
        rows = fetch(db, _SOURCES, {"source_ids": list(source_ids)})
    return {row.id: (row.publisher_id, row.active) for row in rows}


def _terms(row: Any) -> ProgramTerms:
    return ProgramTerms(
        id=row.program_id,
        advertiser_id=row.advertiser_id,
        active=row.active,
        currency=row.currency,
        allow_clickless=row.allow_clickless,
        rule=CommissionRule(
            commission_type=row.commission_type,
            value=row.commission_value,
            currency=row.currency,
            allow_advertiser_commission=row.allow_advertiser_commission,
        ),
    )
