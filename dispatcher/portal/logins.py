"""Checking a login, with a limit on failures kept in Redis.

Failures are counted per (client IP, email) and per client IP in fixed windows: 5 wrong passwords for one
email from one address, or 100 from one address for any emails, lock that pair or address out for the rest
of the 15-minute window. A success clears the pair's count. Redis holds only these counters; if it is down
the limit is not enforced (logged), because refusing every login would lock out every publisher.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import redis
from sqlalchemy.orm import Session

from dispatcher.auth import account_for_password
from dispatcher.models import Publisher

log = logging.getLogger(__name__)

WINDOW_S = 15 * 60
MAX_PER_EMAIL = 5
# Generous: behind a proxy without ProxyFix every publisher shares one address.
MAX_PER_IP = 100


@dataclass(frozen=True)
class Limited:
    retry_after_s: int


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
            log.warning("login rate limit not enforced, Redis unavailable: %s", exc)
        return None

    def failed(self, ip: str, email: str) -> None:
        try:
            with self.client.pipeline() as pipe:
                for key in self._keys(ip, email):
                    pipe.incr(key)
                    pipe.expire(key, WINDOW_S, nx=True)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("login failure not counted, Redis unavailable: %s", exc)

    def succeeded(self, ip: str, email: str) -> None:
        try:
            self.client.delete(self._keys(ip, email)[0])
        except redis.RedisError as exc:
            log.warning("login count not cleared, Redis unavailable: %s", exc)


def authenticate(session: Session, email: str, password: str) -> Publisher | None:
    account: Publisher | None = account_for_password(session, Publisher, email, password)
    return account
