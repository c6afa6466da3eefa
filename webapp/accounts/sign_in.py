"""What every way of signing in shares: its outcome, the lockout policy, opening the session.

Both the password step (`users.authenticate`) and the second factor (`two_factor`) build on
this module, so neither needs the other to finish a sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from webapp.accounts.sessions import revoke_sessions, start_session
from webapp.crypto import fingerprint
from webapp.models import User, utcnow
from webapp.trail import audit

LOCK_AFTER_FAILURES = 5
LOCK_MINUTES = 15
LOCKED_MESSAGE = (
    f"This account is locked for {LOCK_MINUTES} minutes after repeated wrong passwords or "
    "codes, and you are signed out. Try again later or ask an admin to unlock it."
)


class AccountError(ValueError):
    """A request about accounts that cannot be carried out; the message is for the person."""


class AccountLocked(AccountError):
    """A re-authentication refused because the account is (now) locked: sign the person out."""

    def __init__(self, message: str = LOCKED_MESSAGE):
        super().__init__(message)


@dataclass
class SignIn:
    """The outcome of a successful sign-in: the user and the raw session token for the cookie."""

    user: User
    session_token: str
    # "verify" or "enrol" while a second factor is still owed: no session exists yet.
    second_factor: str | None = None


def normalise_email(email: str) -> str:
    """Sign-in names are compared in lower case without surrounding spaces."""
    return (email or "").strip().lower()


def email_fingerprint(email: str) -> str:
    """Fingerprint of a sign-in name, for audit details and throttling rows."""
    return fingerprint("email", normalise_email(email))


def count_failure(
    session: Session, user: User, *, now: datetime, end_sessions: bool = False
) -> bool:
    """Add a failed password or code to the account's count; lock it at the limit (audited).

    One count for sign-in and re-authentication alike, so a stolen session cannot guess the
    password on the password page at argon2 speed. `end_sessions` also signs the account out
    everywhere when it locks (a failure made from inside a session). True when it locked.
    """
    user.failed_logins += 1
    if user.failed_logins < LOCK_AFTER_FAILURES:
        return False
    user.locked_until = now + timedelta(minutes=LOCK_MINUTES)
    user.failed_logins = 0
    if end_sessions:
        revoke_sessions(session, user_id=user.id, reason="locked")
    audit.record(
        session,
        actor="system",
        action="user.locked",
        target_type="user",
        target_id=user.id,
        details={"minutes": LOCK_MINUTES},
    )
    return True


def finish_sign_in(
    session: Session, *, user: User, ip: str, user_agent: str, method: str = "password"
) -> SignIn:
    """Clear the failure count, open a server-side session and audit it; the caller commits."""
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = utcnow()
    raw = start_session(session, user=user, ip=ip, user_agent=user_agent)
    details = {"ip": ip} if method == "password" else {"ip": ip, "method": method}
    audit.record(
        session,
        actor=user.email,
        action="login.succeeded",
        target_type="user",
        target_id=user.id,
        details=details,
    )
    return SignIn(user=user, session_token=raw)
