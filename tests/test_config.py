"""Configuration: DESK_* variables, generated secrets, refusal of unsafe setups."""

from __future__ import annotations

import re
import stat

import pytest
from cryptography.fernet import Fernet

from webapp.config import ConfigError, load_settings


def test_secrets_are_generated_once_with_mode_0600(tmp_path):
    first = load_settings(tmp_path, env={})
    second = load_settings(tmp_path, env={})
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["DESK_ENCRYPTION_KEYS"] == second["DESK_ENCRYPTION_KEYS"]
    for name in ("secret_key", "encryption_keys", "fingerprint_key"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, name
    assert first["DATABASE_URL"] == f"sqlite:///{tmp_path / 'desk.db'}"
    assert first["DESK_GENERATED_SECRETS"] == [
        "DESK_SECRET_KEY",
        "DESK_ENCRYPTION_KEYS",
        "DESK_FINGERPRINT_KEY",
    ]


def test_defaults(tmp_path):
    settings = load_settings(tmp_path, env={})
    assert settings["DESK_HOST"] == "127.0.0.1" and settings["DESK_PORT"] == 8000
    assert settings["DESK_POLL_INTERVAL_SECONDS"] == 900
    assert settings["DESK_SCHEDULER"] == "inprocess"
    assert settings["DESK_RETENTION_DAYS"] == 30


def test_generated_secrets_with_postgresql_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="set DESK_SECRET_KEY, DESK_ENCRYPTION_KEYS"):
        load_settings(tmp_path, env={"DESK_DATABASE_URL": "postgresql+psycopg://u@db/desk"})


def _secrets(**extra) -> dict:
    return {
        "DESK_SECRET_KEY": "x" * 40,
        "DESK_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DESK_FINGERPRINT_KEY": "y" * 40,
        **extra,
    }


def test_shared_secrets_with_postgresql_are_accepted(tmp_path):
    settings = load_settings(tmp_path, env=_secrets(DESK_DATABASE_URL="postgresql://u@db/desk"))
    assert settings["DATABASE_URL"] == "postgresql+psycopg://u@db/desk"
    assert settings["DESK_GENERATED_SECRETS"] == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (_secrets(DESK_SECRET_KEY="changeme"), "placeholder"),
        (_secrets(DESK_ENCRYPTION_KEYS="not-a-fernet-key-but-long-enough"), "Fernet keys"),
        (_secrets(DESK_SCHEDULER="sometimes"), "inprocess"),
        (_secrets(DESK_PORT="eighty"), "whole number"),
        (_secrets(DESK_DATABASE_URL="mysql://x"), "sqlite:/// or postgresql"),
    ],
)
def test_bad_settings_are_refused_with_a_plain_message(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, env=env)


def test_several_encryption_keys_first_is_current(tmp_path):
    keys = [Fernet.generate_key().decode() for _ in range(2)]
    settings = load_settings(tmp_path, env=_secrets(DESK_ENCRYPTION_KEYS=" , ".join(keys)))
    assert settings["DESK_ENCRYPTION_KEYS"] == keys


def test_workflow_settings_from_the_environment(tmp_path):
    settings = load_settings(
        tmp_path,
        env={
            "DESK_CHUNK_SIZE": "500",
            "DESK_POLL_CONCURRENCY": "8",
            "DESK_HEAP_READ_TIMEOUT_SECONDS": "12",
            "DESK_LEASE_SECONDS": "30",
        },
    )
    assert settings["DESK_CHUNK_SIZE"] == 500 and settings["DESK_POLL_CONCURRENCY"] == 8
    assert settings["DESK_HEAP_TIMEOUT"] == (5.0, 12.0) and settings["DESK_LEASE_SECONDS"] == 30
    with pytest.raises(ConfigError, match="at most 10000"):
        load_settings(tmp_path, env={"DESK_CHUNK_SIZE": "10001"})


def test_transparency_log_settings(tmp_path):
    defaults = load_settings(tmp_path, env={})
    assert defaults["DESK_STH_EVERY_SECONDS"] == 60
    assert defaults["DESK_TSA_URL"] is None
    chosen = load_settings(
        tmp_path,
        env={"DESK_STH_EVERY_SECONDS": "300", "DESK_TSA_URL": "https://tsa.example.org/tsr"},
    )
    assert chosen["DESK_STH_EVERY_SECONDS"] == 300
    assert chosen["DESK_TSA_URL"] == "https://tsa.example.org/tsr"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DESK_TSA_URL": "ftp://tsa.example.org"}, "DESK_TSA_URL must be an http:// or https://"),
        ({"DESK_TSA_URL": "tsa.example.org"}, "DESK_TSA_URL must be an http:// or https://"),
        ({"DESK_STH_EVERY_SECONDS": "0"}, "DESK_STH_EVERY_SECONDS must be at least 1"),
        ({"DESK_STH_EVERY_SECONDS": "soon"}, "DESK_STH_EVERY_SECONDS must be a whole number"),
    ],
)
def test_bad_transparency_settings_are_refused(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, env=env)


def test_desk_timezone_is_an_iana_zone_or_unset(tmp_path):
    assert load_settings(tmp_path, env={})["DESK_TIMEZONE"] is None
    settings = load_settings(tmp_path, env={"DESK_TIMEZONE": " Europe/Berlin "})
    assert settings["DESK_TIMEZONE"] == "Europe/Berlin"
    assert load_settings(tmp_path, env={"DESK_TIMEZONE": "UTC"})["DESK_TIMEZONE"] == "UTC"


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus_Mons", "europe/berlin", "../etc/passwd", "zone.tab", "Europe"]
)
def test_an_unknown_desk_timezone_is_refused_at_startup(tmp_path, monkeypatch, zone):
    with pytest.raises(ConfigError, match=r"DESK_TIMEZONE must be an IANA time zone name"):
        load_settings(tmp_path, env={"DESK_TIMEZONE": zone})
    # create_app reads the same settings: the desk does not start.
    from webapp import create_app

    monkeypatch.setenv("DESK_TIMEZONE", zone)
    # On SQLite whatever database the suite runs on: PostgreSQL would first ask for secrets.
    monkeypatch.setenv("DESK_DATABASE_URL", f"sqlite:///{tmp_path / 'desk.db'}")
    with pytest.raises(ConfigError, match=re.escape(f"not {zone!r}")):
        create_app({"INSTANCE_PATH": str(tmp_path / "instance")})
