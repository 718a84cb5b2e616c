"""What the ledger answers, in the shape of the HTTP contract (money as strings in the currency's units)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dispatcher.ledger.commission import rounded
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
class Rejected:
    error: FieldError

    def as_json(self) -> dict[str, Any]:
        return {"error": str(self.error), "fields": {self.error.field: self.error.problem}}


Outcome = Recorded | Rejected
