"""Refusals of the ledger that are not about one bad value (those are `FieldError`s)."""

from __future__ import annotations


class TransactionNotFound(LookupError):
    def __init__(self, sales_id: str) -> None:
        self.sales_id = sales_id
        super().__init__(f"sales_id: no transaction {sales_id!r} of this advertiser")


class StatusConflict(Exception):
    """The change does not fit the transaction's current status (HTTP 409)."""

    def __init__(self, current_status: str, field: str, problem: str) -> None:
        self.current_status = current_status
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")
