"""Refusals of the ledger that are not about one bad value (those are `FieldError`s)."""

from __future__ import annotations


class TransactionNotFound(LookupError):
    """No transaction of this advertiser answers to what was given (HTTP 404): a sales id, or an order
    number (with its event and, if given, its program). Another advertiser's answers exactly the same."""

    def __init__(self, value: str, field: str = "sales_id", detail: str = "") -> None:
        self.sales_id = value  # what was looked for: the sales id, or the order number
        self.field = field
        self.problem = "is not a transaction of this advertiser"
        super().__init__(f"{field}: no transaction {value!r}{detail} of this advertiser")


class StatusConflict(Exception):
    """The change does not fit the transaction's current status (HTTP 409)."""

    def __init__(self, current_status: str, field: str, problem: str) -> None:
        self.current_status = current_status
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")
