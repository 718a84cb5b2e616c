"""gunicorn's settings for the web app (the Procfile's `web`):

    gunicorn --config gunicorn.conf.py 'app:create_app()'

From the environment: PORT (default 8000), WEB_CONCURRENCY worker processes (default 2), and the app's own
settings (README, Configuration). gunicorn command-line options still override what is set here.
"""

from __future__ import annotations

import os

# Imported by name: gunicorn reads every top-level name of this file that is one of its settings, and
# `config` is one.
from typing import Any

from dispatcher import instruments
from dispatcher.config import ConfigError, from_env
from dispatcher.logs import dict_config


def _whole_number(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip() or str(default)
    if not (value.isascii() and value.isdigit() and int(value) > 0):
        raise SystemExit(f"Error: {name} must be a whole number above 0, got {value!r}")
    return int(value)


# The app's settings are read here, in gunicorn's master, before it binds or forks: a production process
# without REDIS_URL or SECRET_KEY (or with a bad value) stops with one line, not a traceback per worker.
try:
    _settings = from_env()
except ConfigError as error:
    raise SystemExit(f"Error: {error}") from None

bind = [f"0.0.0.0:{_whole_number('PORT', 8000)}"]
workers = _whole_number("WEB_CONCURRENCY", 2)
# A worker silent this long is killed and replaced; a CSV upload of up to 64 MiB must fit.
timeout = 60
# On SIGTERM (a deploy, a scale-down) requests in flight get this long to finish.
graceful_timeout = 30
# Behind a load balancer that keeps connections open; shorter than its idle timeout (commonly 60 s).
keepalive = 5

# gunicorn's control socket (gunicornc) defaults to one path per user: a second gunicorn on the host (another
# app, a test run) would take it over. Off; set control_socket to a path of this instance's own to use it.
control_socket_disable = True

# The app logs each request itself (dispatcher.web.access_log: a request id, never the query string, which
# holds S2S tokens); gunicorn's access log would write the query string.
accesslog = None
# gunicorn's own lines go through the app's handler and format (LOG_FORMAT=json: one JSON object a line).
logconfig_dict = dict_config(_settings)
# gunicorn's start, worker and stop lines are worth keeping at the default LOG_LEVEL (WARNING).
loglevel = "debug" if _settings.log_level == "DEBUG" else "info"


# Metrics (README, Observability): with PROMETHEUS_MULTIPROC_DIR set, each worker writes its counts there and
# /metrics sums them. The master empties the directory before the first worker forks (an earlier run's files
# would be added to this one's), and tells prometheus_client of each worker that exits.
def on_starting(server: Any) -> None:
    path = instruments.multiprocess_dir()
    if path is not None:
        instruments.empty_directory(path)


def child_exit(server: Any, worker: Any) -> None:
    instruments.process_exited(worker.pid)
