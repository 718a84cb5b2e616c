"""Limits on failed logins, shared by the portal's and the support console's sign-in, kept in Redis.

Failures are counted per (client IP, email) and per client IP in fixed windows: 5 wrong passwords for one
email from one address, or 100 from one address for any emails, lock that pair or address out for the rest
of the 15-minute window. A success clears the pair's count. Redis holds the counters, so every web process
(gunicorn worker, host) shares them. If Redis is down, each process counts in its own memory until Redis is
back (logged): the same limits per process, rather than none (guessing freely) or refusing every login.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)

WINDOW_S = 15 * 60
MAX_PER_EMAIL = 5
# Generous: behind a proxy without ProxyFix every publisher shares one address.
MAX_PER_IP = 100


@dataclass(frozen=True)
class Limited:
    retry_after_s: int


class _LocalCounts:
    """The fallback: fixed-window counters in this process's memory, used only while Redis is unreachable."""

    MAX_KEYS = 100_000  # beyond this, expired windows are dropped before counting more

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, float]] = {}  # key -> (failures, end of its window, monotonic)

    def get(self, key: str) -> tuple[int, int]:
        """(failures, seconds left in the window)."""
        with self._lock:
            count, ends = self._windows.get(key, (0, 0.0))
        left = ends - time.monotonic()
        return (count, int(left) + 1) if left > 0 else (0, 0)

    def incr(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._windows) >= self.MAX_KEYS:
                self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
            count, ends = self._windows.get(key, (0, 0.0))
            self._windows[key] = (count + 1, ends) if ends > now else (1, now + WINDOW_S)

    def delete(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)


_local = _LocalCounts()


class LoginLimiter:
    def __init__(self, client: redis.Redis, prefix: str = "portal:login") -> None:
        self.client = client
        self.prefix = prefix

    def _keys(self, ip: str, email: str) -> tuple[str, str]:
        pair = hashlib.sha256(f"{ip}|{email}".encode()).hexdigest()[:32]
        return f"{self.prefix}:pair:{pair}", f"{self.prefix}:ip:{ip}"

    def blocked(self, ip: str, email: str) -> Limited | None:
        pair_key, ip_key = self._keys(ip, email)
        try:
            pair, by_ip = self.client.mget(pair_key, ip_key)
            if int(pair or 0) >= MAX_PER_EMAIL or int(by_ip or 0) >= MAX_PER_IP:
                ttl = max(int(self.client.ttl(pair_key)), int(self.client.ttl(ip_key)), 1)
                return Limited(ttl)
        except redis.RedisError as exc:
            log.warning("login rate limit counted in this process only, Redis unavailable: %s", exc)
            (pair_count, pair_left), (ip_count, ip_left) = _local.get(pair_key), _local.get(ip_key)
            if pair_count >= MAX_PER_EMAIL or ip_count >= MAX_PER_IP:
                return Limited(max(pair_left, ip_left, 1))
        return None

    def failed(self, ip: str, email: str) -> None:
        try:
            with self.client.pipeline() as pipe:
                for key in self._keys(ip, email):
                    pipe.incr(key)
                    pipe.expire(key, WINDOW_S, nx=True)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("login failure counted in this process only, Redis unavailable: %s", exc)
            for key in self._keys(ip, email):
                _local.incr(key)

    def succeeded(self, ip: str, email: str) -> None:
        pair_key = self._keys(ip, email)[0]
        _local.delete(pair_key)
        try:
            self.client.delete(pair_key)
        except redis.RedisError as exc:
            log.warning("login count not cleared, Redis unavailable: %s", exc)
