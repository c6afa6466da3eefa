"""Settings from the DESK_* environment variables, and the secrets generated into instance/."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

DEFAULT_DATABASE_URL = "sqlite:///instance/desk.db"

# Secrets the desk needs. When unset, each is generated once into instance/ (mode 0600) so a
# single-host install works from `make run`; several hosts must share them via the environment.
GENERATED_SECRETS = {
    "DESK_SECRET_KEY": ("secret_key", lambda: secrets.token_urlsafe(48)),
    "DESK_ENCRYPTION_KEYS": ("encryption_keys", lambda: Fernet.generate_key().decode()),
    "DESK_FINGERPRINT_KEY": ("fingerprint_key", lambda: secrets.token_urlsafe(48)),
}

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev", "test", "password"}


class ConfigError(RuntimeError):
    """The configuration is insecure or inconsistent; the message says how to fix it."""


def _int(env: dict, name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}.")
    return value


def _bool(env: dict, name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}.")


def read_secret_file(instance_path: Path, filename: str, make) -> str:
    """Return the secret kept in instance/<filename>, creating it (mode 0600) on first use."""
    path = instance_path / filename
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    value = make()
    # O_EXCL: two processes starting together must not write two different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def resolve_database_url(url: str, instance_path: Path) -> str:
    """Anchor the default SQLite path to the instance folder, whatever the working directory."""
    if url == DEFAULT_DATABASE_URL:
        instance_path.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{instance_path / 'desk.db'}"
    return url


def load_settings(instance_path: Path, env: dict | None = None) -> dict:
    """Build the Flask config mapping from the environment; raise ConfigError on a bad setup."""
    env = dict(os.environ if env is None else env)
    database_url = resolve_database_url(
        env.get("DESK_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL, instance_path
    )
    if not (database_url.startswith("sqlite") or database_url.startswith("postgresql")):
        raise ConfigError("DESK_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL.")
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")

    generated = []
    values = {}
    for name, (filename, make) in GENERATED_SECRETS.items():
        value = env.get(name, "").strip()
        if not value:
            value = read_secret_file(instance_path, filename, make)
            generated.append(name)
        elif value.lower() in PLACEHOLDER_SECRETS or len(value) < 16:
            raise ConfigError(f"{name} is a placeholder or too short; use a long random value.")
        values[name] = value

    if generated and database_url.startswith("postgresql"):
        # Several hosts share one PostgreSQL: a key generated on one host would make the other
        # hosts unable to decrypt API keys or recompute fingerprints.
        raise ConfigError(
            "With PostgreSQL, set " + ", ".join(generated) + " in the environment of every host; "
            "generated secrets in instance/ only suit a single-host SQLite install."
        )

    encryption_keys = [k.strip() for k in values["DESK_ENCRYPTION_KEYS"].split(",") if k.strip()]
    for key in encryption_keys:
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                "DESK_ENCRYPTION_KEYS must be Fernet keys (32 url-safe base64 bytes), "
                "comma-separated, the current one first."
            ) from None

    scheduler = env.get("DESK_SCHEDULER", "inprocess").strip() or "inprocess"
    if scheduler not in {"inprocess", "off"}:
        raise ConfigError("DESK_SCHEDULER must be 'inprocess' or 'off'.")

    two_factor_roles = env.get("DESK_2FA_REQUIRED_ROLES", "officer,admin")
    unknown = {r.strip().lower() for r in two_factor_roles.split(",") if r.strip()} - {
        "auditor",
        "officer",
        "admin",
    }
    if unknown:
        raise ConfigError(
            "DESK_2FA_REQUIRED_ROLES may list auditor, officer and admin only, not "
            + ", ".join(sorted(unknown))
            + "."
        )

    allowlist = [h.strip().lower() for h in env.get("DESK_HEAP_URL_ALLOWLIST", "").split(",")]
    secure_cookies = _bool(env, "DESK_SECURE_COOKIES", False)
    return {
        "SECRET_KEY": values["DESK_SECRET_KEY"],
        "DESK_ENCRYPTION_KEYS": encryption_keys,
        "DESK_FINGERPRINT_KEY": values["DESK_FINGERPRINT_KEY"],
        "DESK_GENERATED_SECRETS": generated,
        "DATABASE_URL": database_url,
        "DESK_HOST": env.get("DESK_HOST", "127.0.0.1").strip() or "127.0.0.1",
        "DESK_PORT": _int(env, "DESK_PORT", 8000, minimum=1),
        "DESK_POLL_INTERVAL_SECONDS": _int(env, "DESK_POLL_INTERVAL_SECONDS", 900, minimum=1),
        "DESK_SCHEDULER": scheduler,
        "DESK_RETENTION_DAYS": _int(env, "DESK_RETENTION_DAYS", 30, minimum=1),
        "DESK_HEAP_URL_ALLOWLIST": [h for h in allowlist if h],
        "DESK_2FA_REQUIRED_ROLES": two_factor_roles,
        "DESK_SESSION_IDLE_MINUTES": _int(env, "DESK_SESSION_IDLE_MINUTES", 30, minimum=1),
        "DESK_SESSION_MAX_HOURS": _int(env, "DESK_SESSION_MAX_HOURS", 12, minimum=1),
        "DESK_UPLOAD_MAX_BYTES": _int(env, "DESK_UPLOAD_MAX_BYTES", 5 * 1024 * 1024, minimum=1024),
        "DESK_PROXY_HOPS": _int(env, "DESK_PROXY_HOPS", 0),
        "SESSION_COOKIE_SECURE": secure_cookies,
        "DESK_HSTS": secure_cookies,
    }
