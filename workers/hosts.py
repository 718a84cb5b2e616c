"""Per-host slots in one worker process: a slow or dead receiver occupies at most its own slots.

A host whose last few answers were timeouts is "tripped": it gets one slot until it answers again, so a
hanging publisher costs one sending thread per process instead of `host_concurrency`.
"""

from __future__ import annotations

import threading
from collections import defaultdict


class HostSlots:
    def __init__(self, per_host: int, trip_after_timeouts: int) -> None:
        self.per_host = per_host
        self.trip_after_timeouts = trip_after_timeouts
        self._lock = threading.Lock()
        self._busy: defaultdict[str, int] = defaultdict(int)
        self._timeouts: defaultdict[str, int] = defaultdict(int)

    def try_acquire(self, host: str) -> bool:
        with self._lock:
            if self._busy[host] >= self.limit(host):
                return False
            self._busy[host] += 1
            return True

    def release(self, host: str, *, timed_out: bool) -> None:
        with self._lock:
            self._busy[host] -= 1
            if self._busy[host] <= 0:
                del self._busy[host]
            if timed_out:
                self._timeouts[host] += 1
            else:
                self._timeouts.pop(host, None)

    def limit(self, host: str) -> int:
        tripped = self._timeouts.get(host, 0) >= self.trip_after_timeouts
        return 1 if tripped else self.per_host

    def busy(self, host: str) -> int:
        with self._lock:
            return self._busy.get(host, 0)
