"""The application factory. It only wires: configuration, database, Redis, blueprints and commands."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from dispatcher import broker, cli, config, db, errors, login
from dispatcher.web import (
    access_log,
    advertiser_api,
    advertiser_portal,
    api_docs,
    clicks,
    converters,
    demo,
    health,
    home,
    metrics,
    portal,
    publisher_api,
    s2s,
    support,
    times,
)
from workers import cli as workers_cli

ROOT = Path(__file__).resolve().parent


def create_app(settings: Mapping[str, object] | None = None) -> Flask:
    """Build the app from the environment, or, when `settings` is given (tests), from that dict alone."""
    resolved = config.from_env() if settings is None else config.from_mapping(settings)
    app = Flask(
        __name__,
        instance_path=str(resolved.instance_path),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "dispatcher" / "static"),
    )
    app.config.update(SECRET_KEY=resolved.secret_key, **resolved.extra)
    app.extensions["dispatcher.settings"] = resolved

    db.init_app(app, db.Database(resolved.database_url, password_method=resolved.password_method))
    broker.init_app(app, broker.Broker(resolved))
    errors.init_app(app)
    cli.init_app(app)
    workers_cli.init_app(app)
    login.init_app(app)
    login.init_csrf(app)

    converters.init_app(app)
    times.init_app(app)
    app.register_blueprint(home.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(portal.blueprint)
    support.init_app(app)
    advertiser_portal.init_app(app)
    app.register_blueprint(metrics.blueprint)
    app.register_blueprint(publisher_api.blueprint)
    app.register_blueprint(clicks.blueprint)
    app.register_blueprint(advertiser_api.blueprint)
    app.register_blueprint(s2s.blueprint)
    app.register_blueprint(api_docs.blueprint)
    if resolved.demo_mode:
        app.register_blueprint(demo.blueprint)
    access_log.init_app(app)
    if resolved.trusted_proxies:
        # Last, so it wraps every other middleware (the clicks' fast path reads REMOTE_ADDR itself).
        n = resolved.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    return app


if __name__ == "__main__":
    from dispatcher.devserver import main

    main()
