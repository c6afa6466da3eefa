"""API tokens: bearer credentials for /api/v1, stored hashed and shown only once.

Each token has a scope — `read` (GET only) or `write` (every method) — and an expiry of 1 to
365 days (90 by default): a machine credential should not outlive its purpose by default, nor
act beyond it. Auditors only ever get `read`: their role changes nothing.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlmodel import Session, select

from webapp.accounts.users import AccountError
from webapp.crypto import token_hash
from webapp.models import ApiToken, Role, User, utcnow
from webapp.trail import audit

TOKEN_PREFIX = "desk_"  # noqa: S105 (a prefix, not a secret)
SCOPES = ("read", "write")
DEFAULT_DAYS = 90
MAX_DAYS = 365
# What a refused token's holder is told (the token is theirs: nothing new is revealed).
REVOKED_BECAUSE = {
    "password_changed": "its owner changed their password",
    "password_reset": "an admin reset its owner's password",
    "account_disabled": "its owner's account was disabled",
    "revoked": "it was revoked on the API tokens page",
}


class TokenRefused(Exception):
    """A known token that no longer works (expired or revoked); the message is for its holder."""


def default_scope(user: User) -> str:
    """`read` for auditors, `write` for officers and admins."""
    return "read" if user.role == Role.AUDITOR.value else "write"


def check_scope(user: User, scope: str | None) -> str:
    """The scope a new token of `user` gets, or AccountError naming what is allowed."""
    scope = scope or default_scope(user)
    if scope not in SCOPES:
        raise AccountError("The scope must be read or write.")
    if scope == "write" and user.role == Role.AUDITOR.value:
        raise AccountError("Auditors can only have read tokens: an auditor's role changes nothing.")
    return scope


def check_days(days: int | None) -> int:
    """A token's lifetime in days, 1 to 365 (90 when not given), or AccountError."""
    if days is None:
        return DEFAULT_DAYS
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise AccountError(f"A token lasts 1 to {MAX_DAYS} days (default {DEFAULT_DAYS}).")
    return days


def create_api_token(
    session: Session,
    *,
    actor: str,
    user: User,
    name: str,
    scope: str | None = None,
    days: int | None = None,
) -> str:
    """Create a bearer token for `user`; return it once (only its hash is stored)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise AccountError("Give the token a name of 1 to 100 characters.")
    scope = check_scope(user, scope)
    days = check_days(days)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=token_hash(raw),
        prefix=raw[:10],
        created_at=now,
        scope=scope,
        expires_at=now + timedelta(days=days),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="api_token.created",
        target_type="api_token",
        target_id=row.id,
        details={"user_id": user.id, "name": name, "scope": scope, "days": days},
    )
    session.commit()
    return raw


def revoke_api_token(session: Session, *, actor: User, token_id: int) -> None:
    """Revoke a token: one's own, or anyone's for an admin."""
    row = session.get(ApiToken, token_id)
    if row is None or (row.user_id != actor.id and actor.role != Role.ADMIN.value):
        raise AccountError("There is no such token.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        row.revoked_reason = "revoked"
        audit.record(
            session,
            actor=actor.email,
            action="api_token.revoked",
            target_type="api_token",
            target_id=row.id,
        )
        session.commit()


def is_expired(row: ApiToken) -> bool:
    """True once the token's lifetime is over (a token without an expiry never works)."""
    return row.expires_at is None or row.expires_at <= utcnow()


def user_for_api_token(session: Session, raw: str) -> tuple[User, ApiToken] | None:
    """The active account behind a bearer token (with the token row), or None if unknown.

    Raises TokenRefused for a token the desk issued that no longer works, so its holder learns
    why (expired, or revoked and for what reason) instead of a bare "invalid token".
    """
    if not raw.startswith(TOKEN_PREFIX):
        return None
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == token_hash(raw))).first()
    if row is None:
        return None
    if row.revoked_at is not None:
        because = REVOKED_BECAUSE.get(row.revoked_reason or "revoked", REVOKED_BECAUSE["revoked"])
        raise TokenRefused(
            f"This API token was revoked on {row.revoked_at:%Y-%m-%d} because {because}. "
            "Create a new one on the API tokens page or with `desk tokens create`."
        )
    if is_expired(row):
        when = f" on {row.expires_at:%Y-%m-%d}" if row.expires_at else ""
        raise TokenRefused(
            f"This API token expired{when}. Create a new one on the API tokens page or with "
            "`desk tokens create` (tokens last 1 to 365 days)."
        )
    user = session.get(User, row.user_id)
    return (user, row) if user is not None and user.is_active else None
