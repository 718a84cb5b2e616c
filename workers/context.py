"""The worker process's engine: installed by the entry point, or built from the environment on first use.

Jobs must not create the Flask app or read configuration at import time: they get what they need here.
"""

from __future__ import annotations

import threading

from dispatcher import config
from workers import planner_costs, settings
from workers.engine import Engine

_engine: Engine | None = None
_lock = threading.Lock()


def install(engine: Engine | None) -> None:
    """The engine this process's jobs use; None: none yet (built from the environment on first use)."""
    global _engine
    with _lock:
        _engine = engine


def engine() -> Engine:
    global _engine
    with _lock:
        if _engine is None:
            resolved = config.from_env()
            database = planner_costs.worker_database(resolved.database_url)
            _engine = Engine(database, resolved, settings.from_env())
        return _engine
