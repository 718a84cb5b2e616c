"""`python app.py`: the development run.

The web server runs in the foreground; the worker and the pump run as child processes once they exist; all
share one Redis (the embedded one when REDIS_URL is unset). Ctrl-C stops everything it started, and so does
SIGINT or SIGTERM to this process alone (`kill -INT <pid>`), even when it runs in the background.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType

from flask import Flask

from dispatcher import demo, logs
from dispatcher.broker import Broker, get_broker
from dispatcher.config import Settings

BACKGROUND_COMMANDS = ("worker", "pump")


def main() -> None:
    from app import create_app

    # This is the development run: the embedded Redis and a generated secret key are allowed, here and in the
    # worker and pump it starts (they inherit it). An explicit DISPATCHER_ENV=production is kept.
    os.environ.setdefault("DISPATCHER_ENV", "development")
    app = create_app()
    settings = app.extensions["dispatcher.settings"]
    logs.configure(settings)
    # `kill -INT`, `kill` or a terminal closing must clean up like Ctrl-C does, or the worker, the pump and
    # the embedded Redis are left running. SIGINT is set too: a background job of a non-interactive shell
    # (`make run &`) starts with it ignored, and Python then never raises KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGHUP, _exit_cleanly)
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    broker = get_broker(app)
    children: list[subprocess.Popen[bytes]] = []
    try:  # from the first process started: a signal at any point stops what was started so far
        env = dict(os.environ, REDIS_URL=broker.url)  # children share our Redis instead of starting their own
        _start_children(app, env, children)
        _print_banner(host, port, broker, settings)
        app.run(host=host, port=port, use_reloader=False, threaded=True)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        _stop(children)
        broker.close()


def _print_banner(host: str, port: int, broker: Broker, settings: Settings) -> None:
    print(f"\n  Postback Dispatcher on http://{host}:{port}/   (Ctrl-C stops everything)")
    print(f"  Redis: {broker.url}{' (embedded, development only)' if broker.embedded else ''}")
    if settings.demo_mode:
        print(f"  Demo publisher: {demo.DEMO_PUBLISHER_EMAIL} / {demo.DEMO_PASSWORD}")
        print(f"  Demo staff:     {demo.DEMO_STAFF_EMAIL} / {demo.DEMO_PASSWORD}")
        print(f"  Demo advertiser: {demo.DEMO_ADVERTISER_EMAIL} / {demo.DEMO_PASSWORD} at /advertiser/login")
        print(f"  Demo receiver:  http://{host}:{port}/demo/receipts\n")


def _start_children(app: Flask, env: dict[str, str], children: list[subprocess.Popen[bytes]]) -> None:
    """Appends each child as it starts, so that one started before a signal is stopped too."""
    for name in BACKGROUND_COMMANDS:
        if name not in app.cli.commands:
            print(f"  {name}: not started: the delivery engine does not provide it yet")
            continue
        children.append(subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", name], env=env))


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    # A second signal (Ctrl-C twice, the group's SIGINT then a SIGTERM) must not cut the clean-up short.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    for child in children:
        child.terminate()
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _exit_cleanly(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
