"""Settings from the DESK_* environment variables, and the secrets generated into instance/."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

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


def _chunk_size(env: dict) -> int:
    # Heap accepts at most 10,000 users a deletion request (heap-api.md).
    size = _int(env, "DESK_CHUNK_SIZE", 10_000, minimum=1)
    if size > 10_000:
        raise ConfigError("DESK_CHUNK_SIZE must be at most 10000 (Heap's limit per request).")
    return size


def _tsa_url(env: dict) -> str | None:
    # An RFC 3161 time-stamping authority for signed tree heads; unset: no timestamps.
    raw = env.get("DESK_TSA_URL", "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(
            f"DESK_TSA_URL must be an http:// or https:// URL of a time-stamping authority, "
            f"not {raw!r}."
        )
    return raw


# `host` or `host:port`; IPv6 as `::1` or `[::1]:8765`.
_ALLOWLIST_ENTRY = re.compile(
    r"(\[[0-9a-f:.]+\]|[0-9a-f]*:[0-9a-f:.]*:[0-9a-f:.]*|[a-z0-9_.-]+)(:[0-9]{1,5})?"
)


def _heap_url_allowlist(env: dict) -> list[str]:
    """DESK_HEAP_URL_ALLOWLIST: hosts (any port) or host:port pairs a base URL may point at.

    Loopback and private-range hosts (the sandbox) are refused unless listed here.
    """
    entries = []
    for raw in env.get("DESK_HEAP_URL_ALLOWLIST", "").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        match = _ALLOWLIST_ENTRY.fullmatch(entry)
        port = int(match.group(2)[1:]) if match and match.group(2) else None
        if not match or (port is not None and not 1 <= port <= 65535):
            raise ConfigError(
                f"DESK_HEAP_URL_ALLOWLIST: {raw.strip()!r} is not a host or host:port "
                "(e.g. 127.0.0.1:8765, heap-proxy.example.com)."
            )
        entries.append(entry)
    return entries


def _timezone(env: dict) -> str | None:
    """DESK_TIMEZONE: the IANA zone every page shows times in; unset, each viewer's own.

    Evidence (certificates, reports, exports, packs) and the API stay in UTC either way.
    """
    raw = env.get("DESK_TIMEZONE", "").strip()
    if not raw:
        return None
    try:
        ZoneInfo(raw)
    except (KeyError, ValueError, OSError):  # unknown name, not a zone file, a directory
        raise ConfigError(
            f"DESK_TIMEZONE must be an IANA time zone name like Europe/Berlin or UTC "
            f"(case matters), not {raw!r}; leave it unset to show each viewer's own zone."
        ) from None
    return raw


def _bool(env: dict, name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}.")


# A bare address (no display name): enough to catch typos and header injection.
_ADDRESS = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\".]+(\.[^@\s,;<>\".]+)*")


def _address(name: str, raw: str) -> str:
    if not _ADDRESS.fullmatch(raw):
        raise ConfigError(f"{name}: {raw!r} is not an e-mail address.")
    return raw


def _alert_settings(env: dict) -> dict:
    """DESK_SMTP_* and the alert settings; alerts stay off unless a host and recipients are set.

    The password is never part of an error message: it could be echoed into a log.
    """
    host = env.get("DESK_SMTP_HOST", "").strip()
    use_ssl = _bool(env, "DESK_SMTP_SSL", False)
    starttls = _bool(env, "DESK_SMTP_STARTTLS", not use_ssl)
    if use_ssl and starttls:
        raise ConfigError(
            "Set either DESK_SMTP_SSL (TLS from the start, port 465) or DESK_SMTP_STARTTLS "
            "(upgrade after connecting, port 587), not both."
        )
    port = _int(env, "DESK_SMTP_PORT", 465 if use_ssl else 587, minimum=1)
    if port > 65535:
        raise ConfigError("DESK_SMTP_PORT must be a port number (1 to 65535).")
    username = env.get("DESK_SMTP_USERNAME", "").strip()
    password = env.get("DESK_SMTP_PASSWORD", "")
    if bool(username) != bool(password):
        raise ConfigError("Set DESK_SMTP_USERNAME and DESK_SMTP_PASSWORD together, or neither.")
    recipients = [
        _address("DESK_ALERT_RECIPIENTS", r.strip())
        for r in env.get("DESK_ALERT_RECIPIENTS", "").split(",")
        if r.strip()
    ]
    sender = env.get("DESK_SMTP_FROM", "").strip()
    if sender:
        _address("DESK_SMTP_FROM", sender)
    enabled = bool(host and recipients)
    if enabled and not sender:
        raise ConfigError("Set DESK_SMTP_FROM to the address alerts are sent from.")
    digest_hour = _int(env, "DESK_DIGEST_HOUR_UTC", 7)
    if digest_hour > 23:
        raise ConfigError("DESK_DIGEST_HOUR_UTC must be an hour from 0 to 23.")
    public_url = env.get("DESK_PUBLIC_URL", "").strip().rstrip("/") or "http://127.0.0.1:8000"
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", public_url):
        raise ConfigError(
            "DESK_PUBLIC_URL must be the desk's address as people open it, "
            "like https://desk.example.org."
        )
    return {
        "DESK_ALERTS_ENABLED": enabled,
        "DESK_SMTP_HOST": host,
        "DESK_SMTP_PORT": port,
        "DESK_SMTP_USERNAME": username,
        "DESK_SMTP_PASSWORD": password,
        "DESK_SMTP_STARTTLS": starttls,
        "DESK_SMTP_SSL": use_ssl,
        "DESK_SMTP_FROM": sender,
        "DESK_ALERT_RECIPIENTS": recipients,
        "DESK_DIGEST_HOUR_UTC": digest_hour,
        "DESK_ALERT_INTERVAL_SECONDS": _int(env, "DESK_ALERT_INTERVAL_SECONDS", 60, minimum=1),
        "DESK_PUBLIC_URL": public_url,
    }


def read_secret_file(instance_path: Path, filename: str, make) -> str:
    """Return the secret kept in instance/<filename>, creating it (mode 0600) on first use."""
    path = instance_path / filename
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
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
        instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
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

    allowlist = _heap_url_allowlist(env)
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
        # 0: an approver's account may be any age (a trial on `make run` must not wait a day).
        "DESK_APPROVER_MIN_AGE_HOURS": _int(env, "DESK_APPROVER_MIN_AGE_HOURS", 0),
        "DESK_HEAP_URL_ALLOWLIST": allowlist,
        "DESK_HEAP_TIMEOUT": (
            float(_int(env, "DESK_HEAP_CONNECT_TIMEOUT_SECONDS", 5, minimum=1)),
            float(_int(env, "DESK_HEAP_READ_TIMEOUT_SECONDS", 30, minimum=1)),
        ),
        "DESK_SUBMIT_INTERVAL_SECONDS": _int(env, "DESK_SUBMIT_INTERVAL_SECONDS", 5, minimum=1),
        "DESK_CHUNK_SIZE": _chunk_size(env),
        "DESK_POLL_CONCURRENCY": _int(env, "DESK_POLL_CONCURRENCY", 4, minimum=1),
        "DESK_STALE_AFTER_DAYS": _int(env, "DESK_STALE_AFTER_DAYS", 30, minimum=1),
        "DESK_LEASE_SECONDS": _int(env, "DESK_LEASE_SECONDS", 60, minimum=5),
        "DESK_CHECKPOINT_EVERY_SECONDS": _int(env, "DESK_CHECKPOINT_EVERY_SECONDS", 86400, 60),
        "DESK_EVIDENCE_TICK_SECONDS": _int(env, "DESK_EVIDENCE_TICK_SECONDS", 3600, minimum=10),
        "DESK_STH_EVERY_SECONDS": _int(env, "DESK_STH_EVERY_SECONDS", 60, minimum=1),
        "DESK_TSA_URL": _tsa_url(env),
        "DESK_2FA_REQUIRED_ROLES": two_factor_roles,
        "DESK_SESSION_IDLE_MINUTES": _int(env, "DESK_SESSION_IDLE_MINUTES", 30, minimum=1),
        "DESK_SESSION_MAX_HOURS": _int(env, "DESK_SESSION_MAX_HOURS", 12, minimum=1),
        "DESK_UPLOAD_MAX_BYTES": _int(env, "DESK_UPLOAD_MAX_BYTES", 5 * 1024 * 1024, minimum=1024),
        "DESK_PROXY_HOPS": _int(env, "DESK_PROXY_HOPS", 0),
        "DESK_TIMEZONE": _timezone(env),
        "SESSION_COOKIE_SECURE": secure_cookies,
        "DESK_HSTS": secure_cookies,
        **_alert_settings(env),
    }
