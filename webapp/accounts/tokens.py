"""API tokens: bearer credentials for /api/v1, stored hashed and shown only once."""

from __future__ import annotations

import secrets

from sqlmodel import Session, select

from webapp.accounts.users import AccountError
from webapp.crypto import token_hash
from webapp.models import ApiToken, Role, User, utcnow
from webapp.trail import audit

TOKEN_PREFIX = "desk_"  # noqa: S105 (a prefix, not a secret)


def create_api_token(session: Session, *, actor: str, user: User, name: str) -> str:
    """Create a bearer token for `user`; return it once (only its hash is stored)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise AccountError("Give the token a name of 1 to 100 characters.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, token_hash=token_hash(raw), prefix=raw[:10])
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="api_token.created",
        target_type="api_token",
        target_id=row.id,
        details={"user_id": user.id, "name": name},
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
        audit.record(
            session,
            actor=actor.email,
            action="api_token.revoked",
            target_type="api_token",
            target_id=row.id,
        )
        session.commit()


def user_for_api_token(session: Session, raw: str) -> tuple[User, ApiToken] | None:
    """The active account behind a bearer token (with the token row), or None."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == token_hash(raw))).first()
    if row is None or row.revoked_at is not None:
        return None
    user = session.get(User, row.user_id)
    return (user, row) if user is not None and user.is_active else None
