"""The ledger: clicks, transactions, commissions, status changes, and the outbox they write.

Entry points for other code:
- `record_click(connection, ClickRequest)` -> the landing URL and the new click id;
- `record_sales(session | connection, advertiser_id, [SaleReport], channel)` -> one outcome per report
  (every intake channel; the API and S2S record theirs on the driver connection, `dispatcher.driver_sql`);
- `change_status(session, advertiser_id, sales_id, StatusChange, channel)`, and
  `change_status_by_order(session, advertiser_id, OrderRef, StatusChange, channel)`;
- `restate(...)`: a repeated S2S or CSV report's status and amount, where they differ (`dispatcher.ledger.
  restatements` applies it to `record_sales`' duplicates);
- `outbox.create_deliveries(session, [FiredEvent], postback_ids=..., skip_existing=...)`
  for backfill and replay.
Each writes in one database transaction and commits; the caller then hands the new delivery ids to RQ with
`dispatcher.ledger.handoff.hand_over`.
"""

from dispatcher.ledger.clicks import ClickRequest, ProgramNotFound, RecordedClick, record_click
from dispatcher.ledger.errors import StatusConflict, TransactionNotFound
from dispatcher.ledger.intake import record_sales
from dispatcher.ledger.reports import SaleReport
from dispatcher.ledger.results import Outcome, Recorded, Rejected, Restated
from dispatcher.ledger.status import (
    Changed,
    OrderRef,
    StatusChange,
    change_status,
    change_status_by_order,
    restate,
)

__all__ = [
    "Changed",
    "ClickRequest",
    "OrderRef",
    "Outcome",
    "ProgramNotFound",
    "Recorded",
    "RecordedClick",
    "Rejected",
    "Restated",
    "SaleReport",
    "StatusChange",
    "StatusConflict",
    "TransactionNotFound",
    "change_status",
    "change_status_by_order",
    "record_click",
    "record_sales",
    "restate",
]
