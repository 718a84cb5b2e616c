from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from dispatcher import config
from dispatcher.config import ConfigError


def test_defaults_give_a_sqlite_file_under_instance_and_an_embedded_redis(tmp_path: Path) -> None:
    settings = config.from_mapping({"INSTANCE_PATH": str(tmp_path)})

    assert settings.database_url == f"sqlite:///{tmp_path / 'dispatcher.db'}"
    assert settings.redis_url is None
    assert settings.embedded_redis
    assert settings.allowed_networks == ()


def test_a_generated_secret_key_is_kept_under_instance_and_reused(tmp_path: Path) -> None:
    first = config.from_mapping({"INSTANCE_PATH": str(tmp_path)}).secret_key
    second = config.from_mapping({"INSTANCE_PATH": str(tmp_path)}).secret_key

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
    settings = config.from_env({"REDIS_URL": "", "DATABASE_URL": "", "INSTANCE_PATH": str(tmp_path)})

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
    assert config.from_env({**environ, "INSTANCE_PATH": str(tmp_path)}).trusted_proxies == trusted


@pytest.mark.parametrize(("value", "trusted"), [(1, 1), (0, 0), ("3", 3)])
def test_trusted_proxies_from_a_dict_take_a_count(tmp_path: Path, value: object, trusted: int) -> None:
    assert (
        config.from_mapping({"TRUSTED_PROXIES": value, "INSTANCE_PATH": str(tmp_path)}).trusted_proxies
        == trusted
    )


@pytest.mark.parametrize("value", [-1, True, 1.0])
def test_trusted_proxies_from_a_dict_refuse_what_is_no_count(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigError, match=f"TRUSTED_PROXIES.*{value!r}"):
        config.from_mapping({"TRUSTED_PROXIES": value, "INSTANCE_PATH": str(tmp_path)})


def test_create_app_with_a_dict_ignores_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import create_app

    monkeypatch.setenv("DATABASE_URL", "mysql://would-fail")
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 32, "TESTING": True})

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
