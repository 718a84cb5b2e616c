"""Intake speed under gunicorn: clicks and reported sales against a bare implementation of the same work.

    python -m bench.intake [--sqlite]

Runs on PostgreSQL by default: a fresh schema of the database named by `BENCH_DATABASE_URL` (else
`TEST_POSTGRES_URL`, else postgresql+psycopg://postgres@127.0.0.1:5432/test), dropped at the end; `--sqlite`
or `BENCH_SQLITE=1` runs on a SQLite file instead. It starts its own Redis, seeds one advertiser, program,
publisher, traffic source, matching postback and click, and serves three apps with gunicorn, each with the
same settings (2 sync workers, as in production):

- the app (`bench.intake:bench_app()`), plus a `/hello` route that only returns text;
- the app without its WSGI fast path (`bench_app(fast_path=False)`): clicks and sales through Flask;
- the bare implementation (`bench._bare:app`, PostgreSQL only): a plain WSGI callable sending the same SQL
  statements as the app in one transaction, one commit, then one RPUSH (its docstring says what it leaves
  out).

First each app answers `BENCH_IN_PROCESS_SALES` (1,000) reported sales a round in this process, through its
WSGI callable (`bench._in_process`: no gunicorn, sockets or load generator), and the lowest CPU of the
request's thread and wall time per sale are printed ("in-process sale" lines), with the fast path's ratio to
Flask. Then it measures, in interleaved rounds of a few seconds each (best round kept), on each app:
`GET /hello`, `GET /c/<program>` (a click: one INSERT ... SELECT, a redirect) and `POST /api/v1/transactions`
(a new order every request: the key, the click and the postbacks read in one SELECT, the transaction, its
event and one delivery inserted, one commit, the ids handed to RQ). It prints each endpoint's req/s, and for
its best round where the machine's time went per request (Linux): CPU of the gunicorn workers, of PostgreSQL's
backends of this run, of Redis and of wrk, and how much of the machine sat idle (`CpuMeter`). Then the ratios:
the fast path's gain (with it over without it), ours over `/hello`, and last ours over bare, `click_vs_bare`
then `ingest_vs_bare` (issue #15's goal: at least 0.8). On SQLite there is no bare app; the last lines are
then the ratios to `/hello`.

The load generator is wrk when it is on PATH (Debian: `apt-get install wrk`), else a Python one (threads,
http.client; `BENCH_GENERATOR=python` forces it); the output says which. The ratios compare endpoints
measured by the same generator in the same run. `BENCH_SECONDS`, `BENCH_ROUNDS` and `BENCH_WORKERS` change
the length and number of rounds and the gunicorn worker count.
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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

from bench._database import backend_pids, describe, fresh_database, sqlite_wanted

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = 8
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
IN_PROCESS_SALES = int(os.environ.get("BENCH_IN_PROCESS_SALES", "1000"))
ROOT = Path(__file__).resolve().parent.parent
# What gunicorn serves, by name: the app, the app without its fast path, the bare implementation.
APPS = {
    "app": "bench.intake:bench_app()",
    "flask": "bench.intake:bench_app(fast_path=False)",
    "bare": "bench._bare:app",
}


def bench_app(fast_path: bool = True, settings: Mapping[str, object] | None = None) -> Flask:
    """The real app plus a bare hello route, the baseline (gunicorn 'bench.intake:bench_app()').

    `fast_path=False`: the same app with its WSGI fast path (`dispatcher.web.fast_path.FastPath`) taken out,
    so that clicks and sales are answered by their Flask views, to measure what the fast path gains.
    """
    from app import create_app
    from dispatcher.web.access_log import AccessLog
    from dispatcher.web.fast_path import FastPath

    app = create_app(settings)
    if not fast_path:
        access = app.wsgi_app  # the access log, around the fast path (dispatcher.web.access_log)
        if not (isinstance(access, AccessLog) and isinstance(access.app, FastPath)):
            # ProxyFix (TRUSTED_PROXIES) wraps it; unwrapping werkzeug's middleware is not ours to do.
            raise RuntimeError(f"app.wsgi_app is {access!r}, not the access log: unset TRUSTED_PROXIES")
        access.app = access.app.wsgi_app
    app.add_url_rule("/hello", "hello", lambda: "hello")
    return app


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Target:
    name: str
    server: Server
    method: str
    path: str
    headers: Mapping[str, str]
    body: str = ""  # for POST: a template with {n}, made unique per request
    expect: int = 200


def main(argv: Sequence[str] | None = None) -> None:
    sqlite = sqlite_wanted("python -m bench.intake", __doc__, argv)
    from dispatcher.redis_server import EmbeddedRedis

    with (
        tempfile.TemporaryDirectory(prefix="bench-intake-") as scratch,
        fresh_database(Path(scratch), sqlite=sqlite, prefix="bench_intake") as database_url,
    ):
        base = Path(scratch)
        redis_server = EmbeddedRedis(base / "redis", persist=False)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_server.start(),
            "SECRET_KEY": "bench-secret-key-long-enough",
            "INSTANCE_PATH": str(base / "instance"),
            # gunicorn reads the repository's gunicorn.conf.py: no access line for each request of the load.
            "ACCESS_LOG": "0",
        }
        try:
            seeded = seed(env)
            names = ["app", "flask"] if sqlite else ["app", "flask", "bare"]
            for line in in_process(env, seeded, names):
                print(line)
            servers = start_gunicorn(env, names)
            try:
                redis_pid = redis_server.process.pid if redis_server.process else None
                meters = {
                    name: CpuMeter.of(server.process.pid, redis_pid, database_url)
                    for name, server in servers.items()
                }
                run(servers, seeded, database_url, meters)
            finally:
                stop_gunicorn(servers.values())
        finally:
            redis_server.stop()


def seed(env: Mapping[str, str]) -> dict[str, str]:
    """Tables and a small network with one matching postback and one click, through the app's own code."""
    from app import create_app
    from bench._network import seed_network
    from dispatcher.db import get_db
    from dispatcher.models import Base

    app = create_app({key: env[key] for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "INSTANCE_PATH")})
    database = get_db(app)
    Base.metadata.create_all(database.engine)
    with database.session() as session:
        network = seed_network(session, "Bench", "https://tracker.example/pb?cid=#fobs#&sa=#sa#")
    database.dispose()
    ids = (network.api_key, network.program_id, network.publisher_id, network.source_id, network.click_id)
    return dict(zip(("key", "program", "pub", "ts", "click"), map(str, ids), strict=True))


def in_process(env: Mapping[str, str], seeded: Mapping[str, str], names: Sequence[str]) -> list[str]:
    """The named apps answering reported sales in this process (`bench._in_process`), before gunicorn."""
    from bench import _in_process
    from bench._bare import BareApp
    from dispatcher.db import get_db
    from dispatcher.ledger.handoff import drain

    settings = {key: env[key] for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "INSTANCE_PATH")}
    made = {"app": lambda: bench_app(settings=settings), "flask": lambda: bench_app(False, settings)}
    apps: dict[str, Any] = {}
    try:
        for name in names:
            apps[name] = made[name]() if name in made else BareApp(env["DATABASE_URL"], env["REDIS_URL"])
        figures = _in_process.measure(apps, seeded, IN_PROCESS_SALES, ROUNDS)
    finally:
        for app in apps.values():
            if isinstance(app, Flask):
                drain(app)
                get_db(app).dispose()
            else:
                app.close()
    return _in_process.report(figures, IN_PROCESS_SALES)


def start_gunicorn(env: Mapping[str, str], names: Sequence[str]) -> dict[str, Server]:
    """The named apps of `APPS` under gunicorn, each on a port of its own, started together; returns when
    each answers HTTP."""
    from dispatcher.redis_server import free_port

    servers: dict[str, Server] = {}
    try:
        for name in names:
            port = free_port()
            command = [
                sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}",
                "--log-level", "warning", APPS[name],
            ]  # fmt: skip
            servers[name] = Server(name, port, subprocess.Popen(command, env=dict(env), cwd=ROOT))
        for server in servers.values():
            _wait_for_http(server)
    except BaseException:
        stop_gunicorn(servers.values())
        raise
    return servers


def _wait_for_http(server: Server, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"gunicorn serving {APPS[server.name]} exited with {server.process.returncode}")
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=1)
        try:
            connection.request("GET", "/hello")
            connection.getresponse().read()
            return  # any answer (the bare app has no /hello: 404) means it serves
        except OSError:
            time.sleep(0.2)
        finally:
            connection.close()
    raise SystemExit(f"gunicorn serving {APPS[server.name]} did not start within {timeout_s:g} s")


def stop_gunicorn(servers: Collection[Server]) -> None:
    for server in servers:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
    for server in servers:
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@dataclass(frozen=True)
class CpuSample:
    seconds: Mapping[str, float]  # workers, redis, generator, busy, total
    postgres: Mapping[int, float]  # CPU seconds of each of this run's PostgreSQL backends


@dataclass(frozen=True)
class CpuMeter:
    """CPU time per request, by process, while an endpoint is measured (Linux /proc; None elsewhere).

    The ratios say how fast; this says where the machine's time went: the gunicorn workers (the app and the
    server), PostgreSQL's backends serving this run, Redis, the load generator, and how much of the machine
    sat idle (waiting, not computing: locks, I/O). Idle time is throughput lost to waiting, which a faster
    code path alone does not win back.
    """

    workers: tuple[int, ...]
    redis: int | None
    database_url: str

    @classmethod
    def of(cls, server_pid: int, redis_pid: int | None, database_url: str) -> CpuMeter | None:
        if not Path("/proc/stat").exists():
            return None
        children = Path(f"/proc/{server_pid}/task/{server_pid}/children")
        workers = tuple(int(pid) for pid in children.read_text().split()) if children.exists() else ()
        return cls(workers, redis_pid, database_url)

    def sample(self) -> CpuSample:
        """CPU seconds so far: workers, Redis, this process's children (wrk; the Python generator is not a
        child and shows as 0), the whole machine busy, the whole machine in all; and PostgreSQL's backends
        of this run (all three apps' connections: those of apps not being measured sit idle)."""
        ticks = os.sysconf("SC_CLK_TCK")
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = sum(fields) - fields[3] - fields[4]  # less idle and iowait
        mine = os.times()
        return CpuSample(
            {
                "workers": sum(_process_ticks(pid) for pid in self.workers) / ticks,
                "redis": (_process_ticks(self.redis) if self.redis else 0) / ticks,
                "generator": mine.children_user + mine.children_system,
                "busy": busy / ticks,
                "total": sum(fields) / ticks,
            },
            {pid: _process_ticks(pid) / ticks for pid in backend_pids(self.database_url)},
        )

    @staticmethod
    def report(name: str, before: CpuSample, after: CpuSample, requests: float) -> str:
        def per_request(seconds: float) -> float:
            return seconds / max(requests, 1) * 1e6

        spent = {key: per_request(after.seconds[key] - before.seconds[key]) for key in after.seconds}
        postgres = per_request(
            sum(late - before.postgres.get(pid, 0.0) for pid, late in after.postgres.items())
        )
        database = f"PostgreSQL {postgres:.0f} us, " if after.postgres else ""
        idle = max(0.0, 1 - spent["busy"] / spent["total"])  # iowait can go down (proc(5)): never below 0
        return (
            f"{name} CPU per request: gunicorn workers {spent['workers']:.0f} us, {database}"
            f"Redis {spent['redis']:.0f} us, load generator {spent['generator']:.0f} us; machine busy "
            f"{spent['busy']:.0f} us of {spent['total']:.0f} ({idle:.0%} idle)"
        )


def _process_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def targets_of(servers: Mapping[str, Server], seeded: Mapping[str, str]) -> list[Target]:
    """Every endpoint to measure, in the order of each round: the pairs to compare measured side by side."""
    json_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {seeded['key']}"}
    body = '{"click_id": "CLICK", "order_number": "B-{n}", "sale_amount": "25.00"}'.replace(
        "CLICK", seeded["click"]
    )
    link = f"/c/{seeded['program']}?pub={seeded['pub']}&ts={seeded['ts']}&fobs=x"
    suffix = {"app": "", "flask": "_flask", "bare": "_bare"}
    targets = [Target("hello", servers["app"], "GET", "/hello", {})]
    for name, server in servers.items():
        targets.append(Target(f"click{suffix[name]}", server, "GET", link, {}, "", 302))
    for name, server in servers.items():
        targets.append(
            Target(f"ingest{suffix[name]}", server, "POST", "/api/v1/transactions", json_headers, body, 201)
        )
    return targets


def run(
    servers: Mapping[str, Server],
    seeded: Mapping[str, str],
    database_url: str,
    meters: Mapping[str, CpuMeter | None],
) -> None:
    targets = targets_of(servers, seeded)
    forced_python = os.environ.get("BENCH_GENERATOR") == "python"
    wrk = None if forced_python else shutil.which("wrk")
    reason = "BENCH_GENERATOR=python" if forced_python else "wrk not on PATH"
    generator = f"wrk ({wrk})" if wrk else f"python (threads + http.client; {reason})"
    print(f"database: {describe(database_url)}")
    print(f"load generator: {generator}; gunicorn {WORKERS} sync workers per app; {CONNECTIONS} connections")
    print(f"apps: {', '.join(f'{name} ({APPS[name]})' for name in servers)}")
    print(f"{ROUNDS} rounds of {SECONDS:g} s per endpoint, interleaved, after a 1 s warm-up each; best round")
    measure = measure_with_wrk if wrk else measure_with_python
    for target in targets:
        measure(target, 1.0)  # warm-up: imports, connections, the database's caches
    # Interleaved rounds, best of each: on a shared machine, other load comes and goes within seconds, and
    # measuring one endpoint in a quiet moment and another in a busy one would make the ratios say nothing.
    rounds: dict[str, list[float]] = {target.name: [] for target in targets}
    errors: dict[str, int] = {target.name: 0 for target in targets}
    cpu: dict[str, str] = {}
    for _ in range(ROUNDS):
        for target in targets:
            meter = meters.get(target.server.name)
            before, started = (meter.sample() if meter else None), time.monotonic()
            rate, bad = measure(target, SECONDS)
            if meter and before and rate >= max(rounds[target.name], default=0):  # the best round's
                cpu[target.name] = meter.report(
                    target.name, before, meter.sample(), rate * (time.monotonic() - started)
                )
            rounds[target.name].append(rate)
            errors[target.name] += bad
    for line in cpu.values():
        print(line)
    rates = {name: max(values) for name, values in rounds.items()}
    for target in targets:
        each = ", ".join(f"{value:.0f}" for value in rounds[target.name])
        flagged = f"; {errors[target.name]} unexpected responses" if errors[target.name] else ""
        print(
            f"{target.name}: {rates[target.name]:.1f} req/s ({target.server.name}; rounds: {each}{flagged})"
        )
    for line in ratios(rates):
        print(line)


def ratios(rates: Mapping[str, float]) -> list[str]:
    """The closing lines: ours over /hello, the fast path's gain, and last ours over bare (when measured)."""
    lines = [
        f"click fast path gain: x{rates['click'] / rates['click_flask']:.2f}",
        f"sale fast path gain: x{rates['ingest'] / rates['ingest_flask']:.2f}",
        f"click_vs_hello: {rates['click'] / rates['hello']:.2f}",
        f"ingest_vs_hello: {rates['ingest'] / rates['hello']:.2f}",
    ]
    if "click_bare" not in rates:
        return [*lines[:2], "bare: not measured (PostgreSQL only, where the goal is set)", *lines[2:]]
    return [
        *lines,
        f"click_vs_bare: {rates['click'] / rates['click_bare']:.2f}",
        f"ingest_vs_bare: {rates['ingest'] / rates['ingest_bare']:.2f}",
    ]


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


def measure_with_wrk(target: Target, seconds: float) -> tuple[float, int]:
    """Requests per second, and the count of error statuses and socket errors wrk saw."""
    body = '"' + target.body.replace("\\", "\\\\").replace('"', '\\"') + '"'
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"method": target.method, "body": body, "prefix": f"r{next(_RUNS)}"})
    command = ["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{max(seconds, 1):g}s", "-s", script.name]
    for key, value in target.headers.items():
        command += ["-H", f"{key}: {value}"]
    command.append(f"http://{target.server.host}{target.path}")
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


def measure_with_python(target: Target, seconds: float) -> tuple[float, int]:
    name, port = "127.0.0.1", target.server.port
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
