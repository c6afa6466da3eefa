"""Server-side sign-in sessions: the cookie carries only a random token (PITFALLS.md #1)."""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from sqlmodel import Session, select

from webapp.crypto import token_hash
from webapp.models import LoginSession, User, utcnow
from webapp.trail import audit


def start_session(session: Session, *, user: User, ip: str, user_agent: str) -> str:
    """Create a server-side session row; return the raw token (only its hash is stored)."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    hours = current_app.config["DESK_SESSION_MAX_HOURS"]
    session.add(
        LoginSession(
            token_hash=token_hash(raw),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=hours),
            ip=ip,
            user_agent=(user_agent or "")[:255],
        )
    )
    return raw


def load_session(session: Session, raw_token: str) -> tuple[User, LoginSession] | None:
    """The live session for a cookie's token: not revoked, not expired, not idle too long."""
    row = session.exec(
        select(LoginSession).where(LoginSession.token_hash == token_hash(raw_token))
    ).first()
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    idle = timedelta(minutes=current_app.config["DESK_SESSION_IDLE_MINUTES"])
    if row.expires_at <= now or row.last_seen_at + idle <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    return user, row


def revoke_sessions(session: Session, *, user_id: int, reason: str, keep_id: int | None = None):
    """End every live session of an account (optionally all but the current one)."""
    query = select(LoginSession).where(
        LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None)
    )
    now = utcnow()
    for row in session.exec(query).all():
        if row.id != keep_id:
            row.revoked_at = now
            row.revoked_reason = reason


def end_session(session: Session, *, raw_token: str, actor: str) -> None:
    """Sign out: revoke the session so a copied cookie stops working at once."""
    row = session.exec(
        select(LoginSession).where(LoginSession.token_hash == token_hash(raw_token))
    ).first()
    if row is None or row.revoked_at is not None:
        return
    row.revoked_at = utcnow()
    row.revoked_reason = "logout"
    audit.record(session, actor=actor, action="logout", target_type="user", target_id=row.user_id)
    session.commit()
