"""What the ledger answers, in the shape of the HTTP contract (money as strings in the currency's units)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dispatcher.ledger.commission import rounded
from dispatcher.ledger.status import Changed
from dispatcher.validation import FieldError


@dataclass(frozen=True)
class Recorded:
    sales_id: str
    status: str
    commission: Decimal
    currency: str
    deliveries: int  # created for the transaction's first event (the original's, for a duplicate)
    duplicate: bool = False
    new_delivery_ids: tuple[int, ...] = ()  # to hand to RQ after commit; empty for a duplicate
    sale_amount: Decimal | None = None  # a duplicate's, as recorded (not answered): a restatement compares it

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "sales_id": self.sales_id,
            "status": self.status,
            "commission": str(rounded(self.commission, self.currency)),
            "currency": self.currency,
            "deliveries": self.deliveries,
        }
        if self.duplicate:
            body["duplicate"] = True
        return body


@dataclass(frozen=True)
class Restated:
    """A repeated report (S2S, CSV) that changed the recorded transaction's status or amount."""

    changed: Changed

    @property
    def new_delivery_ids(self) -> tuple[int, ...]:
        return self.changed.new_delivery_ids

    def as_json(self) -> dict[str, Any]:
        return {**self.changed.as_json(), "changed": True}


@dataclass(frozen=True)
class Rejected:
    error: FieldError
    current_status: str | None = None  # a change that does not fit the transaction's status (409)

    def as_json(self) -> dict[str, Any]:
        body = {"error": str(self.error), "fields": {self.error.field: self.error.problem}}
        if self.current_status is not None:
            body["current_status"] = self.current_status
        return body


Outcome = Recorded | Rejected | Restated
