"""Redis, which only carries work: where its URL comes from, and one shared client per process."""

from __future__ import annotations

import threading

import redis
from flask import Flask

from dispatcher.config import Settings
from dispatcher.redis_server import EmbeddedRedis

EXTENSION_KEY = "dispatcher.broker"


class Broker:
    def __init__(self, settings: Settings) -> None:
        self._configured_url = settings.redis_url
        self._data_dir = settings.instance_path / "redis"
        self._embedded: EmbeddedRedis | None = None
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The configured URL, or the embedded server's, started on first use (not at import or app start)."""
        if self._configured_url is not None:
            return self._configured_url
        with self._lock:
            if self._embedded is None:
                embedded = EmbeddedRedis(self._data_dir)
                embedded.acquire()
                self._embedded = embedded
            return self._embedded.url

    @property
    def embedded(self) -> EmbeddedRedis | None:
        return self._embedded

    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)
        return self._client

    def ping(self) -> None:
        self.client().ping()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None


def init_app(app: Flask, broker: Broker) -> None:
    app.extensions[EXTENSION_KEY] = broker


def get_broker(app: Flask) -> Broker:
    broker: Broker = app.extensions[EXTENSION_KEY]
    return broker
