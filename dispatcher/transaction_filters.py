"""Which transactions a set of sale and click values names: shared by the support search and bulk replay, so a
bulk replay re-sends exactly what the search that led to it showed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select

from dispatcher.models import Click, Program, Transaction


@dataclass(frozen=True)
class SaleValues:
    sales_id: str | None = None
    order_number: str | None = None
    program_id: int | None = None
    advertiser_id: int | None = None
    click_id: str | None = None
    sub_id: str | None = None  # the click's fobs: the publisher's own (tracker's) click id

    @classmethod
    def of(cls, source: object) -> SaleValues:
        """The same-named fields of a search's or a replay's filters."""
        return cls(**{name: getattr(source, name) for name in cls.__dataclass_fields__})


def transaction_ids(values: SaleValues) -> Select[int] | None:
    """The ids of the transactions these values allow, or None when none is set (no narrowing)."""
    where: list[Any] = []
    if values.sales_id is not None:
        where.append(Transaction.sales_id == values.sales_id)
    if values.order_number is not None:
        where.append(Transaction.order_number == values.order_number)
    if values.program_id is not None:
        where.append(Transaction.program_id == values.program_id)
    if values.advertiser_id is not None:
        where.append(
            Transaction.program_id.in_(
                select(Program.id).where(Program.advertiser_id == values.advertiser_id)
            )
        )
    clicks = [
        condition
        for condition, value in (
            (Click.click_id == values.click_id, values.click_id),
            (Click.fobs == values.sub_id, values.sub_id),
        )
        if value is not None
    ]
    if not where and not clicks:
        return None
    query = select(Transaction.id).where(*where)
    if clicks:
        # A join, not a nested IN: the planner then sees one small row set (the clicks, by a unique or
        # indexed column) and walks transactions.click_pk and deliveries.transaction_id by index.
        query = query.join(Click, Click.id == Transaction.click_pk).where(*clicks)
    return query
