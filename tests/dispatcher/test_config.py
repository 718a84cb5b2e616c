from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from dispatcher import accounts, auth, config, credentials
from dispatcher.config import ConfigError
from dispatcher.db import get_db
from dispatcher.models import Base, Publisher

# A development run: the embedded Redis and the generated secret key are allowed (see test_production.py).
DEV = {"DISPATCHER_ENV": "development"}


def test_defaults_give_a_sqlite_file_under_instance_and_an_embedded_redis(tmp_path: Path) -> None:
    settings = config.from_mapping({**DEV, "INSTANCE_PATH": str(tmp_path)})

    assert settings.database_url == f"sqlite:///{tmp_path / 'dispatcher.db'}"
    assert settings.redis_url is None
    assert settings.embedded_redis
    assert settings.allowed_networks == ()


def test_a_generated_secret_key_is_kept_under_instance_and_reused(tmp_path: Path) -> None:
    first = config.from_mapping({**DEV, "INSTANCE_PATH": str(tmp_path)}).secret_key
    second = config.from_mapping({**DEV, "INSTANCE_PATH": str(tmp_path)}).secret_key

    assert first == second
    assert len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_environment_is_read_only_by_from_env(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": "postgresql://user@db.example/app",
        "REDIS_URL": "redis://cache.example:6380/2",
        "SECRET_KEY": "a" * 32,
        "POSTBACK_ALLOWED_NETWORKS": "127.0.0.0/8, 10.1.0.0/16",
        "INSTANCE_PATH": str(tmp_path),
    }

    settings = config.from_env(env)

    # Bare postgresql:// would mean psycopg2; we ship psycopg 3.
    assert settings.database_url == "postgresql+psycopg://user@db.example/app"
    assert settings.redis_url == "redis://cache.example:6380/2"
    assert settings.secret_key == "a" * 32
    assert settings.allowed_networks == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("10.1.0.0/16"),
    )


def test_empty_environment_values_mean_the_default(tmp_path: Path) -> None:
    settings = config.from_env({**DEV, "REDIS_URL": "", "DATABASE_URL": "", "INSTANCE_PATH": str(tmp_path)})

    assert settings.redis_url is None
    assert settings.database_url.startswith("sqlite:///")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://root@localhost/app"),
        ("DATABASE_URL", "not a url"),
        ("REDIS_URL", "http://localhost:6379"),
        ("REDIS_URL", "redis://localhost:notaport/0"),
        ("SECRET_KEY", "short"),
        ("POSTBACK_ALLOWED_NETWORKS", "127.0.0.0/8,localhost"),
        ("POSTBACK_ALLOWED_NETWORKS", "10.0.0.0/33"),
        ("DEMO_MODE", "maybe"),
        ("SESSION_COOKIE_SECURE", "sometimes"),
        ("TRUSTED_PROXIES", "-1"),
        ("TRUSTED_PROXIES", "abc"),
        ("TRUSTED_PROXIES", "1.5"),
        ("TRUSTED_PROXIES", "²"),  # a digit to str.isdigit, not to int()
        ("PASSWORD_HASH_METHOD", "md5"),
        ("PASSWORD_HASH_METHOD", "scrypt:lots"),
        ("DISPATCHER_ENV", "staging"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "loud"),
        ("ACCESS_LOG", "sometimes"),
    ],
)
def test_a_bad_value_fails_loudly_naming_the_variable_and_the_value(
    tmp_path: Path, variable: str, value: str
) -> None:
    with pytest.raises(ConfigError) as error:
        config.from_env({variable: value, "INSTANCE_PATH": str(tmp_path)})

    message = str(error.value)
    assert variable in message
    if variable != "SECRET_KEY":  # the key itself is never echoed
        assert repr(value.split(",")[-1]) in message or repr(value) in message
    else:
        assert value not in message


@pytest.mark.parametrize(
    ("environ", "trusted"), [({}, 0), ({"TRUSTED_PROXIES": ""}, 0), ({"TRUSTED_PROXIES": " 2 "}, 2)]
)
def test_trusted_proxies_default_to_none_and_read_a_count(
    tmp_path: Path, environ: dict[str, str], trusted: int
) -> None:
    assert config.from_env({**DEV, **environ, "INSTANCE_PATH": str(tmp_path)}).trusted_proxies == trusted


@pytest.mark.parametrize(("value", "trusted"), [(1, 1), (0, 0), ("3", 3)])
def test_trusted_proxies_from_a_dict_take_a_count(tmp_path: Path, value: object, trusted: int) -> None:
    assert (
        config.from_mapping({**DEV, "TRUSTED_PROXIES": value, "INSTANCE_PATH": str(tmp_path)}).trusted_proxies
        == trusted
    )


@pytest.mark.parametrize("value", [-1, True, 1.0])
def test_trusted_proxies_from_a_dict_refuse_what_is_no_count(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigError, match=f"TRUSTED_PROXIES.*{value!r}"):
        config.from_mapping({**DEV, "TRUSTED_PROXIES": value, "INSTANCE_PATH": str(tmp_path)})


def test_create_app_with_a_dict_ignores_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import create_app

    monkeypatch.setenv("DATABASE_URL", "mysql://would-fail")
    app = create_app({**DEV, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 32, "TESTING": True})

    assert app.config["TESTING"] is True
    assert app.config["SECRET_KEY"] == "x" * 32
    assert app.extensions["dispatcher.settings"].database_url.startswith("sqlite:///")


def test_create_app_from_the_environment_fails_on_a_bad_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import create_app

    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("POSTBACK_ALLOWED_NETWORKS", "everything")
    with pytest.raises(ConfigError, match="POSTBACK_ALLOWED_NETWORKS.*'everything'"):
        create_app()


def test_an_app_made_without_a_password_method_hashes_new_passwords_with_scrypt(
    tmp_path: Path, redis_url: str
) -> None:
    from app import create_app

    settings = {"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 32, "REDIS_URL": redis_url}
    app = create_app({**settings, "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}"})
    database = get_db(app)
    Base.metadata.create_all(database.engine)
    with database.session() as session:
        created = accounts.create_publisher(session, "P", "p@scrypt.test", "long-password")
        staff = accounts.create_staff(session, "s@scrypt.test", "long-password")
        stored = [created.publisher.password_hash, staff.password_hash]
    database.dispose()

    assert config.from_mapping(settings).password_method == "scrypt"
    assert all(value.startswith("scrypt:32768:8:1$") for value in stored), stored
    # An unknown email is checked against a hash as slow as a real one.
    assert credentials.dummy_hash(config.from_mapping(settings).password_method).startswith(
        "scrypt:32768:8:1$"
    )


def test_a_configured_password_method_hashes_new_passwords_and_still_checks_old_ones(
    tmp_path: Path, redis_url: str
) -> None:
    from app import create_app

    url = f"sqlite:///{tmp_path / 'cheap.db'}"
    settings = {"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 32, "REDIS_URL": redis_url}
    before = create_app({**settings, "DATABASE_URL": url})
    Base.metadata.create_all(get_db(before).engine)
    with get_db(before).session() as session:
        accounts.create_publisher(session, "Old", "old@cheap.test", "old-password")
    get_db(before).dispose()
    app = create_app({**settings, "DATABASE_URL": url, "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})

    with get_db(app).session() as session:
        new = accounts.create_publisher(session, "New", "new@cheap.test", "new-password")
        assert new.publisher.password_hash.startswith("pbkdf2:sha256:1000$")
        found = {
            email: auth.account_for_password(session, Publisher, email, password)
            for email, password in [("old@cheap.test", "old-password"), ("new@cheap.test", "new-password")]
        }
        assert all(found.values()), found
        assert auth.account_for_password(session, Publisher, "new@cheap.test", "wrong") is None
        assert auth.account_for_password(session, Publisher, "nobody@cheap.test", "new-password") is None
    get_db(app).dispose()


def test_a_metrics_directory_set_but_empty_or_unwritable_is_refused_at_start(tmp_path: Path) -> None:
    base = {"DISPATCHER_ENV": "development", "INSTANCE_PATH": str(tmp_path)}
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR is set but empty"):
        config.from_env({**base, "PROMETHEUS_MULTIPROC_DIR": ""})
    a_file = tmp_path / "not-a-directory"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR .*not-a-directory"):
        config.from_env({**base, "PROMETHEUS_MULTIPROC_DIR": str(a_file)})


def test_a_missing_metrics_directory_is_created(tmp_path: Path) -> None:
    wanted = tmp_path / "metrics" / "web"
    config.from_env(
        {
            "DISPATCHER_ENV": "development",
            "INSTANCE_PATH": str(tmp_path),
            "PROMETHEUS_MULTIPROC_DIR": str(wanted),
        }
    )
    assert wanted.is_dir()
