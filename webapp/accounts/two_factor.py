"""Two-factor sign-in (TOTP, RFC 6238): enrolment, codes usable once, recovery codes, reset.

API tokens are not affected: they are machine credentials, created by a person who signed in
with both factors, stored hashed and revocable; requests that carry them never ask for a code.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime

import pyotp
import sqlalchemy as sa
from flask import current_app
from sqlmodel import Session, select

from webapp.accounts import sign_in
from webapp.crypto import decrypt, fingerprint
from webapp.models import LoginAttempt, RecoveryCode, User, UserTotp, utcnow
from webapp.trail import audit

STEP_SECONDS = 30
VALID_WINDOW = 1  # the codes of the previous and next 30 s steps are accepted (clock drift)
DEFAULT_REQUIRED_ROLES = "officer,admin"
REPLAYED = "This code was already used; wait for the next one."
WRONG = "The code is wrong. Enter the 6-digit code your authenticator app shows now."


class TwoFactorError(sign_in.AccountError):
    """A two-factor step that cannot be carried out; the message is for the person."""


def required_roles() -> set[str]:
    """Roles that must use two-factor sign-in (DESK_2FA_REQUIRED_ROLES, comma-separated)."""
    # Validated at startup by config.load_settings.
    raw = current_app.config.get("DESK_2FA_REQUIRED_ROLES", DEFAULT_REQUIRED_ROLES)
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


def is_required(user: User) -> bool:
    """True when the account's role must use a second factor."""
    return user.role in required_roles()


def authenticator(session: Session, user_id: int) -> UserTotp | None:
    """The account's confirmed authenticator, if any."""
    row = session.get(UserTotp, user_id)
    return row if row is not None and row.confirmed_at is not None else None


def pending_stage(session: Session, user: User) -> str | None:
    """What a right password still owes: "verify" (a code), "enrol" (set-up first) or None."""
    if authenticator(session, user.id) is not None:
        return "verify"
    return "enrol" if is_required(user) else None


def recovery_codes_left(session: Session, user_id: int) -> int:
    """How many unused recovery codes the account has."""
    query = (
        select(sa.func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    return session.exec(query).one()


def _normalise(code: str | None) -> str:
    return re.sub(r"[\s-]", "", code or "").lower()


def _step(at: datetime) -> int:
    return int(at.timestamp()) // STEP_SECONDS


def _matching_step(secret: str, code: str, at: datetime) -> int | None:
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    now = _step(at)
    for step in range(now - VALID_WINDOW, now + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _consume_step(session: Session, user_id: int, step: int) -> bool:
    """Record `step` as used unless it (or a later one) already was: atomic across workers."""
    result = session.exec(
        sa.update(UserTotp)
        .where(
            UserTotp.user_id == user_id,
            sa.or_(UserTotp.last_used_step.is_(None), UserTotp.last_used_step < step),
        )
        .values(last_used_step=step)
        .execution_options(synchronize_session="fetch")
    )
    return result.rowcount == 1


def recovery_hash(code: str) -> str:
    # Keyed (HMAC-SHA256): a copy of the database alone does not allow guessing codes offline.
    return fingerprint("recovery_code", code)


def _use_recovery_code(session: Session, user_id: int, code: str) -> bool:
    result = session.exec(
        sa.update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == recovery_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return result.rowcount == 1


def check_code(session: Session, user: User, code: str | None, *, allow_recovery: bool, at=None):
    """Return "totp" or "recovery" for an accepted code; raise TwoFactorError otherwise."""
    row = session.get(UserTotp, user.id)
    code = _normalise(code)
    if row is None or not code:
        raise TwoFactorError(WRONG)
    step = _matching_step(decrypt(row.secret_encrypted), code, at or utcnow())
    if step is not None:
        if not _consume_step(session, user.id, step):
            raise TwoFactorError(REPLAYED)
        return "totp"
    if (
        allow_recovery
        and row.confirmed_at is not None
        and _use_recovery_code(session, user.id, code)
    ):
        return "recovery"
    raise TwoFactorError(WRONG)


def record_failure(
    session: Session, user: User, error: TwoFactorError, *, ip: str, stage: str
) -> bool:
    """Audit a refused code and count it towards the lockout; commits. True if it locked."""
    now = utcnow()
    reason = "replayed" if str(error) == REPLAYED else "wrong"
    session.add(
        LoginAttempt(
            ip=ip, email_fingerprint=sign_in.email_fingerprint(user.email), succeeded=False
        )
    )
    audit.record(
        session,
        actor=user.email,
        action="2fa.failed",
        target_type="user",
        target_id=user.id,
        details={"ip": ip, "stage": stage, "reason": reason},
    )
    locked = sign_in.count_failure(session, user, now=now, end_sessions=True)
    session.commit()
    return locked


def signing_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise TwoFactorError("Your sign-in has expired. Sign in again.")
    if user.is_locked(utcnow()):
        raise TwoFactorError(
            "This account is locked after repeated failed sign-ins. "
            "Try again later or ask an admin to unlock it."
        )
    return user


# --- use cases ----------------------------------------------------------------------------


def verify_sign_in(
    session: Session, *, user_id: int, code: str | None, ip: str, user_agent: str
) -> sign_in.SignIn:
    """The second step of sign-in: a TOTP or recovery code, then the session opens; commits."""
    user = signing_user(session, user_id)
    try:
        method = check_code(session, user, code, allow_recovery=True)
    except TwoFactorError as error:
        session.rollback()
        record_failure(session, user, error, ip=ip, stage="sign_in")
        raise
    action = "2fa.recovery_used" if method == "recovery" else "2fa.verified"
    details = {"ip": ip}
    if method == "recovery":
        details["recovery_codes_left"] = recovery_codes_left(session, user.id)
    audit.record(
        session,
        actor=user.email,
        action=action,
        target_type="user",
        target_id=user.id,
        details=details,
    )
    signed_in = sign_in.finish_sign_in(
        session, user=user, ip=ip, user_agent=user_agent, method=method
    )
    session.commit()
    return signed_in


def reauthenticate_code(session: Session, *, user: User, code: str | None, ip: str = "") -> None:
    """For enrolled accounts, a current code before a security change; no commit if right.

    A wrong code counts toward the lockout; the one that locks the account raises
    AccountLocked (its sessions have ended). A right one, after the right password, clears
    the count.
    """
    if authenticator(session, user.id) is None:
        return
    try:
        check_code(session, user, code, allow_recovery=False)
    except TwoFactorError as error:
        session.rollback()
        if record_failure(session, user, error, ip=ip or "unknown", stage="reauth"):
            raise sign_in.AccountLocked() from error
        raise
    user.failed_logins = 0
    audit.record(
        session,
        actor=user.email,
        action="2fa.verified",
        target_type="user",
        target_id=user.id,
        details={"purpose": "reauth"},
    )
