"""Intake speed under gunicorn: tracking clicks and reported sales against a bare hello route, same run.

    python -m bench.intake

Starts the app under gunicorn (2 sync workers, as in production) on a fresh SQLite database with its own
Redis, seeds one advertiser, program, publisher, traffic source and one matching postback, then measures for
a few seconds each: `GET /hello` (a route that only returns text), `GET /c/<program>` (a click: one INSERT,
one SELECT, a redirect) and `POST /api/v1/transactions` (a new order every request: auth, click and postbacks
read, the transaction, its event and one delivery in one database transaction, then the ids offered to the
hand-over thread, which sends them to RQ).

For the best round of each endpoint it also prints where the machine's time went per request (Linux): CPU of
the gunicorn workers, of Redis and of wrk, and how much of the machine sat idle meanwhile (`CpuMeter`).

The load generator is wrk when it is on PATH (Debian: `apt-get install wrk`), else a Python one (threads,
http.client; `BENCH_GENERATOR=python` forces it); the output says which. The ratios compare endpoints
measured by the same generator. `BENCH_SECONDS`, `BENCH_ROUNDS` and `BENCH_WORKERS` change the length and
number of rounds and the worker count.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = 8
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
ROOT = Path(__file__).resolve().parent.parent


def bench_app() -> Flask:
    """The real app plus a bare hello route, the baseline (gunicorn 'bench.intake:bench_app()')."""
    from app import create_app

    app = create_app()
    app.add_url_rule("/hello", "hello", lambda: "hello")
    return app


@dataclass(frozen=True)
class Target:
    name: str
    method: str
    path: str
    headers: Mapping[str, str]
    body: str = ""  # for POST: a template with {n}, made unique per request
    expect: int = 200


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as scratch:
        base = Path(scratch)
        from dispatcher.redis_server import EmbeddedRedis, free_port

        redis_server = EmbeddedRedis(base / "redis", persist=False)
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{base / 'bench.db'}",
            "REDIS_URL": redis_server.start(),
            "SECRET_KEY": "bench-secret-key-long-enough",
            "INSTANCE_PATH": str(base / "instance"),
        }
        try:
            seeded = seed(env)
            port = free_port()
            server = start_gunicorn(env, port)
            try:
                meter = CpuMeter.of(server.pid, redis_server.process.pid if redis_server.process else None)
                run(f"127.0.0.1:{port}", seeded, meter)
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
        finally:
            redis_server.stop()


def seed(env: Mapping[str, str]) -> dict[str, str]:
    """Schema and a small network with one matching postback and one click, through the app's own code."""
    from app import create_app
    from dispatcher import accounts
    from dispatcher.db import get_db
    from dispatcher.ledger import ClickRequest, record_click
    from dispatcher.models import Base, Postback

    app = create_app({key: env[key] for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "INSTANCE_PATH")})
    database = get_db(app)
    Base.metadata.create_all(database.engine)
    with database.session() as session:
        shop = accounts.create_advertiser(session, "Bench Shop")
        program = accounts.create_program(
            session, shop.advertiser.id, "Bench", landing_url="https://shop.example/", commission="10%"
        )
        media = accounts.create_publisher(session, "Bench Media", "bench@example.test", "long-password")
        source = accounts.create_traffic_source(session, media.publisher.id, "Blog")
        hook = "https://tracker.example/pb?cid=#fobs#&sa=#sa#"
        session.add(Postback(publisher_id=media.publisher.id, url_template=hook))
        ids = {"key": shop.api_key, "program": program.id, "pub": media.publisher.id, "ts": source.id}
    with database.link() as link:
        click = ClickRequest(program.id, media.publisher.id, source.id, {"fobs": "bench"})
        click_id = record_click(link, click).click_id
    database.dispose()
    return {**{key: str(value) for key, value in ids.items()}, "click": click_id}


def start_gunicorn(env: Mapping[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning", "bench.intake:bench_app()",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=dict(env), cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=1) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


@dataclass(frozen=True)
class CpuMeter:
    """CPU time per request, by process, while an endpoint is measured (Linux /proc; None elsewhere).

    The ratios say how fast; this says where the machine's time went: the gunicorn workers (the app and the
    server), Redis, the load generator, and how much of the machine sat idle (waiting, not computing: locks,
    I/O). Idle time is throughput lost to waiting, which a faster code path alone does not win back.
    """

    workers: tuple[int, ...]
    redis: int | None

    @classmethod
    def of(cls, server_pid: int, redis_pid: int | None) -> CpuMeter | None:
        if not Path("/proc/stat").exists():
            return None
        children = Path(f"/proc/{server_pid}/task/{server_pid}/children")
        workers = tuple(int(pid) for pid in children.read_text().split()) if children.exists() else ()
        return cls(workers, redis_pid)

    def sample(self) -> tuple[float, float, float, float, float]:
        """CPU seconds so far: workers, Redis, this process's children (wrk; the Python generator is not a
        child and shows as 0), the whole machine busy, the whole machine in all."""
        ticks = os.sysconf("SC_CLK_TCK")
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = sum(fields) - fields[3] - fields[4]  # less idle and iowait
        mine = os.times()
        return (
            sum(_process_ticks(pid) for pid in self.workers) / ticks,
            (_process_ticks(self.redis) if self.redis else 0) / ticks,
            mine.children_user + mine.children_system,
            busy / ticks,
            sum(fields) / ticks,
        )

    @staticmethod
    def report(name: str, before: tuple[float, ...], after: tuple[float, ...], requests: float) -> str:
        workers, redis, generator, busy, total = (
            (late - early) / max(requests, 1) * 1e6 for early, late in zip(before, after, strict=True)
        )
        return (
            f"{name} CPU per request: gunicorn workers {workers:.0f} us, Redis {redis:.0f} us, load "
            f"generator {generator:.0f} us; machine busy {busy:.0f} us of {total:.0f} "
            f"({1 - busy / total:.0%} idle)"
        )


def _process_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def run(host: str, seeded: dict[str, str], meter: CpuMeter | None = None) -> None:
    json_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {seeded['key']}"}
    body = '{"click_id": "CLICK", "order_number": "B-{n}", "sale_amount": "25.00"}'.replace(
        "CLICK", seeded["click"]
    )
    link = f"/c/{seeded['program']}?pub={seeded['pub']}&ts={seeded['ts']}&fobs=x"
    targets = [
        Target("hello", "GET", "/hello", {}),
        Target("click", "GET", link, {}, "", 302),
        Target("ingest", "POST", "/api/v1/transactions", json_headers, body, 201),
    ]
    forced_python = os.environ.get("BENCH_GENERATOR") == "python"
    wrk = None if forced_python else shutil.which("wrk")
    reason = "BENCH_GENERATOR=python" if forced_python else "wrk not on PATH"
    generator = f"wrk ({wrk})" if wrk else f"python (threads + http.client; {reason})"
    print(f"load generator: {generator}; gunicorn {WORKERS} sync workers; SQLite; {CONNECTIONS} connections")
    print(f"{ROUNDS} rounds of {SECONDS:g} s per endpoint, interleaved, after a 1 s warm-up each; best round")
    measure = measure_with_wrk if wrk else measure_with_python
    for target in targets:
        measure(host, target, 1.0)  # warm-up: imports, connection pools, SQLite pages
    # Interleaved rounds, best of each: on a shared machine, other load comes and goes within seconds, and
    # measuring one endpoint in a quiet moment and another in a busy one would make the ratios say nothing.
    rounds: dict[str, list[float]] = {target.name: [] for target in targets}
    errors: dict[str, int] = {target.name: 0 for target in targets}
    cpu: dict[str, str] = {}
    for _ in range(ROUNDS):
        for target in targets:
            before, started = (meter.sample() if meter else None), time.monotonic()
            rate, bad = measure(host, target, SECONDS)
            if meter and before and rate >= max(rounds[target.name], default=0):  # the best round's
                cpu[target.name] = meter.report(
                    target.name, before, meter.sample(), rate * (time.monotonic() - started)
                )
            rounds[target.name].append(rate)
            errors[target.name] += bad
    for line in cpu.values():
        print(line)
    rates = {name: max(values) for name, values in rounds.items()}
    for name, values in rounds.items():
        each = ", ".join(f"{value:.0f}" for value in values)
        flagged = f"; {errors[name]} unexpected responses" if errors[name] else ""
        print(f"{name}: {rates[name]:.1f} req/s (rounds: {each}{flagged})")
    print(f"click_vs_hello: {rates['click'] / rates['hello']:.2f}")
    print(f"ingest_vs_hello: {rates['ingest'] / rates['hello']:.2f}")


_RUNS = iter(range(1, 1_000_000))

# Each wrk thread numbers its requests; a random thread tag keeps order numbers unique across threads.
WRK_SCRIPT = """
wrk.method = "%(method)s"
local template = %(body)s
local n = 0
function setup(thread)
  thread:set("tag", "%(prefix)s-" .. tostring(math.random(1, 1000000000)))
end
function request()
  if template == "" then return wrk.format() end
  n = n + 1
  return wrk.format(nil, nil, nil, (string.gsub(template, "{n}", tag .. "-" .. n)))
end
"""


def measure_with_wrk(host: str, target: Target, seconds: float) -> tuple[float, int]:
    """Requests per second, and the count of error statuses and socket errors wrk saw."""
    body = '"' + target.body.replace("\\", "\\\\").replace('"', '\\"') + '"'
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"method": target.method, "body": body, "prefix": f"r{next(_RUNS)}"})
    command = ["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{max(seconds, 1):g}s", "-s", script.name]
    for key, value in target.headers.items():
        command += ["-H", f"{key}: {value}"]
    command.append(f"http://{host}{target.path}")
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None:
        raise SystemExit(f"wrk printed no rate:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, socket.groups())) if socket else 0)
    return float(rate.group(1)), errors


def measure_with_python(host: str, target: Target, seconds: float) -> tuple[float, int]:
    name, port = host.split(":")
    stop_at = time.monotonic() + seconds
    counts = [0] * CONNECTIONS
    errors = [0] * CONNECTIONS
    prefix = f"r{next(_RUNS)}"

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(name, int(port), timeout=10)
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            body = target.body.replace("{n}", f"{prefix}-{index}-{n}").encode() if target.body else None
            try:
                connection.request(target.method, target.path, body=body, headers=dict(target.headers))
                response = connection.getresponse()
                response.read()
                if response.status == target.expect:
                    counts[index] += 1
                else:
                    errors[index] += 1
                if response.will_close:  # gunicorn's sync workers close after each response
                    connection.close()
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                connection.close()
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CONNECTIONS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started), sum(errors)


if __name__ == "__main__":
    main()
