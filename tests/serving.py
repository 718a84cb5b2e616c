"""Test HTTP servers in a background thread."""

from __future__ import annotations

import threading
from socketserver import BaseServer

# `shutdown()` waits for the serving loop to look at its flag, which it does once per poll interval: the
# default 0.5 s made every test closing a receiver half a second longer.
POLL_INTERVAL_S = 0.02


def serve_in_thread(server: BaseServer) -> threading.Thread:
    """Serves `server` from a daemon thread until `server.shutdown()`; returns that thread, started."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL_S}, daemon=True
    )
    thread.start()
    return thread
