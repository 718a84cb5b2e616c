"""Configuration: read once, from the environment or from a dict (tests), and validated loudly."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import click

from dispatcher.credentials import DEFAULT_PASSWORD_METHOD, is_password_method

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_INSTANCE_PATH = Path(__file__).resolve().parent.parent / "instance"

# Every key the service reads; anything else in a config dict is passed to Flask untouched.
KNOWN_KEYS = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "POSTBACK_ALLOWED_NETWORKS",
    "INSTANCE_PATH",
    "DEMO_MODE",
    "SESSION_COOKIE_SECURE",
    "METRICS_TOKEN",
    "TRUSTED_PROXIES",
    "PASSWORD_HASH_METHOD",
    "DISPATCHER_ENV",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "ACCESS_LOG",
)

# The allowed values of a few variables, the default first. Production is the default: a process nobody
# marked as a development run never starts a private Redis or makes up a secret key of its own.
ENVIRONMENTS = ("production", "development")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("WARNING", "DEBUG", "INFO", "ERROR", "CRITICAL")
# What a production process cannot run without, and how to set it: the one line it stops with.
REQUIRED_IN_PRODUCTION = {
    "REDIS_URL": "REDIS_URL=redis://<host>:6379/0 (the Redis every process shares)",
    "SECRET_KEY": "SECRET_KEY=<a long random string, the same on every host>",
}


class ConfigError(click.ClickException, ValueError):
    """A configuration value is wrong; the message names the variable and the value.

    A ClickException so that a `flask --app app <command>` whose app cannot be built stops with click's one
    line `Error: <message>` and status 1, not a traceback (Flask's CLI builds the app before any command)."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    secret_key: str = field(repr=False)
    allowed_networks: tuple[IPNetwork, ...]
    instance_path: Path
    demo_mode: bool = False
    # None: decided by the app (Secure except in tests and the http:// demo).
    session_cookie_secure: bool | None = None
    # Bearer token for GET /metrics; None: only direct requests from this host are answered.
    metrics_token: str | None = None
    # How many reverse proxies in front of the app set X-Forwarded-For/-Proto/-Host; 0: none is read.
    trusted_proxies: int = 0
    # werkzeug's method for new passwords; scrypt unless set (a test suite sets a cheap one).
    password_method: str = DEFAULT_PASSWORD_METHOD
    # DISPATCHER_ENV=development: the embedded Redis and the generated secret key are allowed.
    development: bool = False
    log_format: str = "text"
    log_level: str = "WARNING"
    # One line per request (dispatcher.web.access_log), whatever LOG_LEVEL says; off when a proxy logs them.
    access_log: bool = True
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings for a real run: environment variables, with development defaults."""
    env = os.environ if environ is None else environ
    _metrics_directory(env)
    return _build({key: env[key] for key in KNOWN_KEYS if env.get(key)})


def _metrics_directory(env: Mapping[str, str]) -> None:
    """prometheus_client goes to multiprocess mode when PROMETHEUS_MULTIPROC_DIR merely exists: set but empty,
    it would write its files into the working directory; naming what cannot be written, every count would
    fail. Refused at start, with the fix, rather than found at the first sale."""
    if "PROMETHEUS_MULTIPROC_DIR" not in env:
        return
    value = env["PROMETHEUS_MULTIPROC_DIR"]
    if not value:
        raise ConfigError(
            "PROMETHEUS_MULTIPROC_DIR is set but empty: name a directory of this host's own for the "
            "processes' metrics files, or unset it"
        )
    path = Path(value)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"PROMETHEUS_MULTIPROC_DIR {value!r} cannot be created: {exc.strerror}") from exc
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(
            f"PROMETHEUS_MULTIPROC_DIR must be a directory this process can write, got {value!r}"
        )


def from_mapping(config: Mapping[str, object]) -> Settings:
    """Settings for tests and embedding: the dict alone, never the environment."""
    return _build(config)


def _build(raw: Mapping[str, object]) -> Settings:
    development = _environment(raw.get("DISPATCHER_ENV")) == "development"
    instance_path = Path(str(raw.get("INSTANCE_PATH") or DEFAULT_INSTANCE_PATH)).resolve()
    database_url = _database_url(raw.get("DATABASE_URL"), instance_path)
    redis_url = _redis_url(raw.get("REDIS_URL"))
    secret_key = _given_secret_key(raw.get("SECRET_KEY"))
    networks = _networks(raw.get("POSTBACK_ALLOWED_NETWORKS"))
    demo_mode = _flag("DEMO_MODE", raw.get("DEMO_MODE"))
    secure_value = raw.get("SESSION_COOKIE_SECURE")
    secure = None if secure_value in (None, "") else _flag("SESSION_COOKIE_SECURE", secure_value)
    metrics_token = _metrics_token(raw.get("METRICS_TOKEN"))
    trusted_proxies = _trusted_proxies(raw.get("TRUSTED_PROXIES"))
    password_method = _password_method(raw.get("PASSWORD_HASH_METHOD"))
    log_format = _choice("LOG_FORMAT", raw.get("LOG_FORMAT"), LOG_FORMATS)
    log_level = _choice("LOG_LEVEL", raw.get("LOG_LEVEL"), LOG_LEVELS, upper=True)
    access_value = raw.get("ACCESS_LOG")
    access_log = True if access_value in (None, "") else _flag("ACCESS_LOG", access_value)
    extra = {key: value for key, value in raw.items() if key not in KNOWN_KEYS}
    # Checked after every value, so that a bad value is named before a missing one.
    if not development:
        _require_production_settings(redis_url=redis_url, secret_key=secret_key)
    if secret_key is None:
        secret_key = _development_secret_key(instance_path)
    return Settings(
        database_url,
        redis_url,
        secret_key,
        networks,
        instance_path,
        demo_mode,
        secure,
        metrics_token,
        trusted_proxies,
        password_method,
        development,
        log_format,
        log_level,
        access_log,
        extra,
    )


def _environment(value: object) -> str:
    return _choice("DISPATCHER_ENV", value, ENVIRONMENTS)


def _choice(name: str, value: object, choices: tuple[str, ...], *, upper: bool = False) -> str:
    if value is None or value == "":
        return choices[0]
    word = _text(name, value)
    word = word.upper() if upper else word.lower()
    if word not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return word


def _require_production_settings(**values: object) -> None:
    missing = [name.upper() for name, value in values.items() if value is None]
    if missing:
        how = "; ".join(REQUIRED_IN_PRODUCTION[name] for name in missing)
        raise ConfigError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: set {how}; "
            "or DISPATCHER_ENV=development for a development run "
            "(embedded Redis, a secret key generated under instance/)"
        )


def _trusted_proxies(value: object) -> int:
    if value is None or value == "":
        return 0
    # bool is an int to Python, but True is no count of proxies.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    word = value.strip() if isinstance(value, str) else ""
    if not (word.isascii() and word.isdigit()):
        raise ConfigError(f"TRUSTED_PROXIES must be a whole number of proxies, 0 or more, got {value!r}")
    return int(word)


def _password_method(value: object) -> str:
    if value is None or value == "":
        return DEFAULT_PASSWORD_METHOD
    method = _text("PASSWORD_HASH_METHOD", value)
    if not is_password_method(method):
        raise ConfigError(
            "PASSWORD_HASH_METHOD must be a werkzeug method such as scrypt or pbkdf2:sha256:600000, "
            f"got {value!r}"
        )
    return method


def _metrics_token(value: object) -> str | None:
    if value is None or value == "":
        return None
    token = _text("METRICS_TOKEN", value)
    if len(token) < 16:
        raise ConfigError(f"METRICS_TOKEN must be at least 16 characters, got {len(token)} characters")
    return token


def _database_url(value: object, instance_path: Path) -> str:
    if value is None or value == "":
        return f"sqlite:///{instance_path / 'dispatcher.db'}"
    url = _text("DATABASE_URL", value)
    scheme = url.split(":", 1)[0]
    if scheme not in ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg"):
        raise ConfigError(
            f"DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL, got {url!r}",
        )
    if scheme == "postgresql":
        # SQLAlchemy's bare "postgresql" means psycopg2, which we do not ship; psycopg 3 is the driver.
        url = "postgresql+psycopg" + url[len("postgresql") :]
    return url


def _redis_url(value: object) -> str | None:
    if value is None or value == "":
        return None
    url = _text("REDIS_URL", value)
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise ConfigError(f"REDIS_URL must look like redis://host:6379/0, got {url!r}")
    try:
        parts.port  # noqa: B018 - evaluating it validates the port
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL has a bad port: {url!r}") from exc
    return url


def _given_secret_key(value: object) -> str | None:
    if value is None or value == "":
        return None
    key = _text("SECRET_KEY", value)
    if len(key) < 16:
        raise ConfigError(f"SECRET_KEY must be at least 16 characters, got {len(key)} characters")
    return key


def _development_secret_key(instance_path: Path) -> str:
    # One generated key kept under instance/, so sessions survive restarts of the development run.
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def _networks(value: object) -> tuple[IPNetwork, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple)):
        items = [str(item) for item in value]
    else:
        items = _text("POSTBACK_ALLOWED_NETWORKS", value).split(",")
    networks = []
    for item in (piece.strip() for piece in items):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigError(
                f"POSTBACK_ALLOWED_NETWORKS must be comma-separated CIDRs such as 127.0.0.0/8, got {item!r}",
            ) from exc
    return tuple(networks)


def _flag(name: str, value: object) -> bool:
    if value is None or value == "" or value is False:
        return False
    if value is True:
        return True
    word = _text(name, value).lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0 (true/false), got {value!r}")


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value.strip()
