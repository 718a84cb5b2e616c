"""Log lines: plain text (the development default) or one JSON object per line (`LOG_FORMAT=json`), with the
ids known where the line is written (request, sale, delivery, attempt, worker).

Ids reach a line three ways, the first that has one wins: `extra={"delivery_id": ...}` on the logging call;
`bind()` inside a `scope()` (the web layer opens one per request, so a view's `bind(sales_id=...)` lands on
that request's access line); `set_process_field()` for what holds for the whole process (a worker's name).
A scope lives in a `contextvars` variable, so it belongs to one request's thread, never to another's.
"""

from __future__ import annotations

import json
import logging
import logging.config
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from dispatcher.config import Settings

# The ids a line may carry, in the order they are written.
ID_FIELDS = ("request_id", "sales_id", "delivery_id", "attempt", "worker")
# What an access line adds (dispatcher.web.access_log).
ACCESS_FIELDS = ("method", "path", "status", "duration_ms")
FIELDS = ID_FIELDS + ACCESS_FIELDS

_scope: ContextVar[dict[str, object] | None] = ContextVar("dispatcher_log_scope", default=None)
_process_fields: dict[str, object] = {}


@contextmanager
def scope(**fields: object) -> Iterator[None]:
    """Lines written in this block (in this thread or task) carry `fields` and whatever `bind` adds."""
    token = _scope.set(dict(fields))
    try:
        yield
    finally:
        _scope.reset(token)


def bind(**fields: object) -> None:
    """Add ids to the current scope; outside any scope (a CLI command, a test) this does nothing."""
    current = _scope.get()
    if current is not None:
        current.update(fields)


def set_process_field(name: str, value: object) -> None:
    """An id every line of this process carries from now on (a worker's name)."""
    _process_fields[name] = value


def fields_of(record: logging.LogRecord) -> dict[str, object]:
    """The known ids and access fields of a record, from the call's `extra`, the scope, then the process."""
    scoped = _scope.get() or {}
    found: dict[str, object] = {}
    for name in FIELDS:
        value = getattr(record, name, None)
        if value is None:
            value = scoped.get(name, _process_fields.get(name))
        if value is not None:
            found[name] = value
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the known ids, and the
    exception's traceback (as one string, so that the line stays one line)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **fields_of(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time level logger message`, then the known ids as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = {name: value for name, value in fields_of(record).items() if name in ID_FIELDS}
        if not ids:
            return text
        suffix = " ".join(f"{name}={value}" for name, value in ids.items())
        first, newline, rest = text.partition("\n")  # after the message, before a traceback
        return f"{first} {suffix}{newline}{rest}"


class NoQueryStrings(logging.Filter):
    """gunicorn logs the request line of a request that failed outside the app ("Error handling request
    /s2s/transaction?token=..."): S2S tokens live in query strings, so any text argument of gunicorn's lines
    loses its query string here."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("gunicorn") and isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                arg.split("?", 1)[0] + "?(query string left out)"
                if isinstance(arg, str) and "?" in arg
                else arg
                for arg in record.args
            )
        return True


def dict_config(settings: Settings) -> dict[str, Any]:
    """The `logging.config.dictConfig` schema for a process of ours; gunicorn.conf.py hands it to gunicorn
    (`logconfig_dict`), so that gunicorn's own lines come out in the same format."""
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    return {
        "version": 1,
        # Module loggers exist before this runs (imported at startup); they must keep working.
        "disable_existing_loggers": False,
        "formatters": {"dispatcher": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        # stderr: commands print their JSON results on stdout, which logs must not interleave with.
        "filters": {"no_query_strings": {"()": f"{NoQueryStrings.__module__}.{NoQueryStrings.__qualname__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "dispatcher",
                "stream": "ext://sys.stderr",
                "filters": ["no_query_strings"],
            }
        },
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
        "loggers": {
            # Each request's line (dispatcher.web.access_log) at INFO, whatever the level of the rest.
            "dispatcher.access": {"level": "INFO" if settings.access_log else "WARNING"},
            # gunicorn's lines go through our handler at its own level (--log-level, gunicorn.conf.py); its
            # access log is off (ours has no query strings).
            "gunicorn.error": {"handlers": [], "propagate": True},
            "gunicorn.access": {"handlers": [], "propagate": False},
            # The development server's request lines hold query strings (S2S tokens); ours replace them.
            "werkzeug": {"level": "WARNING"},
            # Alembic tells at INFO which plugins it set up, in every process that builds the app.
            "alembic": {"level": "WARNING"},
        },
    }


def configure(settings: Settings) -> None:
    """Set up this process's logging (an entry point's first step: the worker, the pump, the dev server)."""
    logging.config.dictConfig(dict_config(settings))
