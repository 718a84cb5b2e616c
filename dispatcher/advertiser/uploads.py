"""CSV uploads from the advertiser portal: the batch API's format and per-line semantics
(`dispatcher.ledger.csv_batch`), with each line's result kept for a day so the page can offer it as a file.

The page is streamed chunk by chunk (500 lines), each chunk recorded and committed before the next is read,
so a large file shows its progress as it goes. The results live in Redis under the upload's random id and
the advertiser's id: another advertiser's upload id finds nothing. Losing them (Redis flushed) loses only the
download; the sales themselves are in the database.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from dispatcher.csv_cells import csv_line, safe_cell
from dispatcher.ledger import Rejected, Restated
from dispatcher.ledger.csv_batch import LineOutcome

log = logging.getLogger(__name__)

RESULTS_TTL_S = 24 * 3600
COLUMNS = ("line", "result", "sales_id", "status", "commission", "currency", "error")
_ID_CHARS = 22


@dataclass(frozen=True)
class LineResult:
    line: int
    result: str  # recorded | changed | duplicate | rejected
    sales_id: str = ""
    status: str = ""
    commission: str = ""
    currency: str = ""
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS}


def new_upload_id() -> str:
    return secrets.token_urlsafe(16)[:_ID_CHARS]


def result_of(line: LineOutcome) -> LineResult:
    outcome = line.outcome
    if isinstance(outcome, Rejected):
        error = str(outcome.error)
        if outcome.current_status is not None:
            error += f" (current status: {outcome.current_status})"
        return LineResult(line.line, "rejected", error=error)
    body = outcome.as_json()
    kind = "changed" if isinstance(outcome, Restated) else "duplicate" if outcome.duplicate else "recorded"
    return LineResult(line.line, kind, body["sales_id"], body["status"], body["commission"], body["currency"])


def _key(advertiser_id: int, upload_id: str) -> str:
    return f"advertiser:upload:{advertiser_id}:{upload_id}"


def keep(client: redis.Redis, advertiser_id: int, upload_id: str, results: list[LineResult]) -> None:
    """Append a chunk's results; a Redis failure is logged and costs only the download."""
    if not results:
        return
    key = _key(advertiser_id, upload_id)
    try:
        with client.pipeline() as pipe:
            pipe.rpush(key, *(json.dumps(result.as_json()) for result in results))
            pipe.expire(key, RESULTS_TTL_S)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("upload %s: results not kept for download, Redis unavailable: %s", upload_id, exc)


def exists(client: redis.Redis, advertiser_id: int, upload_id: str) -> bool:
    return len(upload_id) <= _ID_CHARS and bool(client.exists(_key(advertiser_id, upload_id)))


def results_csv(client: redis.Redis, advertiser_id: int, upload_id: str) -> Iterator[str]:
    key = _key(advertiser_id, upload_id)
    yield csv_line(COLUMNS)
    start, step = 0, 1000
    while batch := client.lrange(key, start, start + step - 1):
        for raw in batch:
            row = json.loads(raw)
            yield csv_line(safe_cell(row[name]) for name in COLUMNS)
        start += step
