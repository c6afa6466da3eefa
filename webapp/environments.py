"""Heap environments: registration, encrypted API keys, and a Heap client for each (use cases)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app
from sqlmodel import Session, select

from webapp import tool_policy
from webapp.crypto import DecryptionError, decrypt, encrypt, fingerprint
from webapp.heap import HeapClient, HeapError, HeapURLNotAllowed, check_base_url, error_class
from webapp.models import Environment, Region, utcnow
from webapp.trail import audit

log = logging.getLogger(__name__)


# The columns' sizes (models.Environment): longer input is refused in words, never by the database.
MAX_BASE_URL_LENGTH = 500
MAX_ACCOUNT_PROPERTY_LENGTH = 255


class EnvironmentInputError(ValueError):
    """An environment change that cannot be made; the message is for the admin."""


class NameTaken(EnvironmentInputError):
    """Another environment has the name: a conflict with what is stored, not a bad name."""


@dataclass
class EnvironmentInput:
    """What an admin (form or API) submits for an environment."""

    name: str
    app_id: str
    region: str = Region.US.value
    base_url: str | None = None
    main_production: bool = False
    api_key: str | None = None
    account_property: str | None = None


def _validate(data: EnvironmentInput) -> EnvironmentInput:
    name = (data.name or "").strip()
    app_id = str(data.app_id or "").strip()
    if not name or len(name) > 100:
        raise EnvironmentInputError("The name must be 1 to 100 characters.")
    if not app_id.isdigit() or len(app_id) > 20:
        raise EnvironmentInputError("The app_id must be the environment's numeric id in Heap.")
    if data.region not in {r.value for r in Region}:
        raise EnvironmentInputError("The region must be 'us' or 'eu'.")
    base_url = (data.base_url or "").strip().rstrip("/") or None
    if base_url and len(base_url) > MAX_BASE_URL_LENGTH:
        raise EnvironmentInputError(
            f"The base URL must be at most {MAX_BASE_URL_LENGTH} characters."
        )
    if base_url:
        try:
            check_base_url(base_url, current_app.config["DESK_HEAP_URL_ALLOWLIST"])
        except HeapURLNotAllowed as error:
            raise EnvironmentInputError(
                f"This base URL is not allowed ({error}). An operator can permit a host with "
                "DESK_HEAP_URL_ALLOWLIST (`host` or `host:port`, comma-separated)."
            ) from None
    account_property = (data.account_property or "").strip() or None
    if account_property and len(account_property) > MAX_ACCOUNT_PROPERTY_LENGTH:
        raise EnvironmentInputError(
            f"The account property must be at most {MAX_ACCOUNT_PROPERTY_LENGTH} characters."
        )
    if account_property and account_property.lower() == "id":
        raise EnvironmentInputError("Heap forbids a property named 'id'.")
    api_key = (data.api_key or "").strip() or None
    return EnvironmentInput(
        name=name,
        app_id=app_id,
        region=data.region,
        base_url=base_url,
        main_production=bool(data.main_production),
        api_key=api_key,
        account_property=account_property,
    )


def _public(env: Environment) -> dict:
    """What the audit trail may say about an environment: never the key itself."""
    return {
        "name": env.name,
        "app_id": env.app_id,
        "region": env.region,
        "base_url": env.base_url,
        "main_production": env.main_production,
        "api_key_fp": env.api_key_fingerprint,
        "account_property": env.account_property,
    }


def _check_unique_name(session: Session, name: str, own_id: int | None) -> None:
    clash = session.exec(select(Environment).where(Environment.name == name)).first()
    if clash is not None and clash.id != own_id:
        raise NameTaken("Another environment already has this name.")


def _set_key(env: Environment, api_key: str) -> None:
    env.api_key_encrypted = encrypt(api_key)
    env.api_key_fingerprint = fingerprint("api_key", api_key)[:16]
    env.api_key_set_at = utcnow()


def create_environment(session: Session, *, actor: str, data: EnvironmentInput) -> Environment:
    """Register a Heap environment."""
    data = _validate(data)
    _check_unique_name(session, data.name, None)
    if data.main_production and not data.api_key:
        raise EnvironmentInputError("Main Production needs its deletion API key.")
    env = Environment(
        name=data.name,
        app_id=data.app_id,
        region=data.region,
        base_url=data.base_url,
        main_production=data.main_production,
        account_property=data.account_property,
    )
    if data.api_key:
        _set_key(env, data.api_key)
    session.add(env)
    session.flush()
    tool_policy.store_default(session, env)
    audit.record(
        session,
        actor=actor,
        action="environment.created",
        target_type="environment",
        target_id=env.id,
        details=_public(env),
    )
    session.commit()
    return env


def update_environment(
    session: Session, *, actor: str, environment_id: int, data: EnvironmentInput
) -> Environment:
    """Change an environment; an empty API key keeps the stored one."""
    env = get_environment(session, environment_id)
    data = _validate(data)
    _check_unique_name(session, data.name, env.id)
    before = _public(env)
    env.name, env.app_id, env.region = data.name, data.app_id, data.region
    env.base_url, env.main_production = data.base_url, data.main_production
    env.account_property = data.account_property
    if data.api_key:
        _set_key(env, data.api_key)
    if env.main_production and not env.api_key_encrypted:
        raise EnvironmentInputError("Main Production needs its deletion API key.")
    after = _public(env)
    changed = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if changed:
        env.updated_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="environment.updated",
            target_type="environment",
            target_id=env.id,
            details=changed,
        )
    session.commit()
    return env


def get_environment(session: Session, environment_id: int) -> Environment:
    """The environment, or an error naming the id."""
    env = session.get(Environment, environment_id)
    if env is None:
        raise EnvironmentInputError(f"There is no environment {environment_id}.")
    return env


def list_environments(session: Session) -> list[Environment]:
    """All environments, by name."""
    return list(session.exec(select(Environment).order_by(Environment.name)).all())


def heap_client(env: Environment, **options) -> HeapClient:
    """A Heap client for the environment (the API key decrypted in memory only)."""
    api_key = decrypt(env.api_key_encrypted) if env.api_key_encrypted else None
    settings = current_app.config
    options.setdefault("allowlist", settings["DESK_HEAP_URL_ALLOWLIST"])
    options.setdefault("timeout", settings.get("DESK_HEAP_TIMEOUT", (5.0, 30.0)))
    return HeapClient(
        app_id=env.app_id, api_key=api_key, region=env.region, base_url=env.base_url, **options
    )


def test_connection(session: Session, *, actor: str, environment_id: int) -> tuple[bool, str]:
    """Fetch a token from Heap with the stored pair; audit the outcome (never the token).

    The audit entry holds the HTTP status and a fixed error class: whatever the host answered
    may be shown to the admin (and only Heap's own hosts have their text read at all), but it
    never enters the audit trail.
    """
    env = get_environment(session, environment_id)
    if not env.main_production or not env.api_key_encrypted:
        raise EnvironmentInputError(
            "Only the Main Production environment, with its API key, can reach the deletion API."
        )
    env_id = env.id
    session.commit()  # never hold a transaction open across the HTTP call
    answer: dict = {"http_status": None, "error_class": None}
    try:
        with heap_client(env) as client:
            client.test_connection()
        ok, message = True, "Heap issued a token: the app_id and API key work."
    except HeapURLNotAllowed as error:
        ok, message = False, f"The desk did not connect: {error}."
        answer = {"http_status": None, "error_class": error_class(error)}
    except HeapError as error:
        ok, message = False, f"Heap refused: {error}"
        answer = {"http_status": error.status, "error_class": error_class(error)}
    except DecryptionError:
        ok = False
        answer["error_class"] = "desk_error"
        message = (
            "The stored API key cannot be decrypted with DESK_ENCRYPTION_KEYS (was a key removed "
            "before `desk keys rotate`?). Enter the key again to replace it."
        )
    env = get_environment(session, env_id)
    if ok:
        env.last_connection_ok_at = utcnow()
    audit.record(
        session,
        actor=actor,
        action="environment.connection_tested",
        target_type="environment",
        target_id=env_id,
        details={"ok": ok, **answer} if not ok else {"ok": ok},
    )
    session.commit()
    log.info("connection test for environment %s: %s", env_id, "ok" if ok else "failed")
    return ok, message
