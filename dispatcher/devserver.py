"""`python app.py`: the development run.

The web server runs in the foreground; the worker and the pump run as child processes once they exist; all
share one Redis (the embedded one when REDIS_URL is unset). Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType

from flask import Flask

from dispatcher import demo, logs
from dispatcher.broker import get_broker

BACKGROUND_COMMANDS = ("worker", "pump")


def main() -> None:
    from app import create_app

    # This is the development run: the embedded Redis and a generated secret key are allowed, here and in the
    # worker and pump it starts (they inherit it). An explicit DISPATCHER_ENV=production is kept.
    os.environ.setdefault("DISPATCHER_ENV", "development")
    app = create_app()
    settings = app.extensions["dispatcher.settings"]
    logs.configure(settings)
    # A terminal closing or `kill` must clean up like Ctrl-C does, or the embedded Redis is left running.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGHUP, _exit_cleanly)
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    broker = get_broker(app)
    env = dict(os.environ, REDIS_URL=broker.url)  # children share our Redis instead of starting their own
    children = _start_children(app, env)
    print(f"\n  Postback Dispatcher on http://{host}:{port}/   (Ctrl-C stops everything)")
    print(f"  Redis: {broker.url}{' (embedded, development only)' if broker.embedded else ''}")
    if settings.demo_mode:
        print(f"  Demo publisher: {demo.DEMO_PUBLISHER_EMAIL} / {demo.DEMO_PASSWORD}")
        print(f"  Demo staff:     {demo.DEMO_STAFF_EMAIL} / {demo.DEMO_PASSWORD}")
        print(f"  Demo advertiser: {demo.DEMO_ADVERTISER_EMAIL} / {demo.DEMO_PASSWORD} at /advertiser/login")
        print(f"  Demo receiver:  http://{host}:{port}/demo/receipts\n")
    try:
        app.run(host=host, port=port, use_reloader=False, threaded=True)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        broker.close()


def _start_children(app: Flask, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    children = []
    for name in BACKGROUND_COMMANDS:
        if name not in app.cli.commands:
            print(f"  {name}: not started: the delivery engine does not provide it yet")
            continue
        children.append(subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", name], env=env))
    return children


def _exit_cleanly(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
