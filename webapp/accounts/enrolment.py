"""Two-factor enrolment, recovery codes and resets (use cases built on two_factor)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pyotp
from sqlmodel import Session, select

from webapp.accounts import sessions as login_sessions
from webapp.accounts import users as accounts
from webapp.accounts.two_factor import (
    STEP_SECONDS,
    TwoFactorError,
    authenticator,
    check_code,
    reauthenticate_code,
    record_failure,
    recovery_hash,
    signing_user,
)
from webapp.crypto import decrypt, encrypt
from webapp.models import RecoveryCode, User, UserTotp, utcnow
from webapp.trail import audit

ISSUER = "Deletion Desk"
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o or 1/l/i to misread


@dataclass
class Enrolment:
    """A started enrolment: the secret to show (once, while unconfirmed) and its otpauth URI."""

    secret: str
    uri: str


def _new_recovery_codes(session: Session, user_id: int) -> list[str]:
    for old in session.exec(select(RecoveryCode).where(RecoveryCode.user_id == user_id)).all():
        session.delete(old)
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(user_id=user_id, code_hash=recovery_hash(raw)))
    return codes


def pending_enrolment(session: Session, *, user_id: int) -> Enrolment | None:
    """The started, unconfirmed enrolment of an account (to show its QR code), if any."""
    row = session.get(UserTotp, user_id)
    user = session.get(User, user_id)
    if row is None or row.confirmed_at is not None or user is None:
        return None
    secret = decrypt(row.secret_encrypted)
    uri = pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=user.email, issuer_name=ISSUER
    )
    return Enrolment(secret=secret, uri=uri)


def begin_enrolment(session: Session, *, user_id: int, password: str | None = None) -> None:
    """Create the secret of an account without an authenticator; commits.

    `password` re-authenticates a signed-in person; the sign-in flow passes None because the
    password was checked moments before (the pending second-factor marker attests it).
    """
    user = signing_user(session, user_id)
    if password is not None and not accounts.password_matches(
        user, password, where="two_factor_setup"
    ):
        raise TwoFactorError("The current password is wrong.")
    row = session.get(UserTotp, user_id)
    if row is not None and row.confirmed_at is not None:
        raise TwoFactorError("Two-factor sign-in is already set up for this account.")
    if row is None:
        session.add(UserTotp(user_id=user_id, secret_encrypted=encrypt(pyotp.random_base32())))
        session.commit()


def _confirm(session: Session, user: User, code: str | None, ip: str) -> list[str]:
    row = session.get(UserTotp, user.id)
    if row is None or row.confirmed_at is not None:
        raise TwoFactorError("Start the set-up again: there is no authenticator waiting.")
    try:
        check_code(session, user, code, allow_recovery=False)
    except TwoFactorError as error:
        session.rollback()
        record_failure(session, user, error, ip=ip, stage="enrol")
        raise
    row.confirmed_at = utcnow()
    codes = _new_recovery_codes(session, user.id)
    audit.record(
        session,
        actor=user.email,
        action="2fa.enrolled",
        target_type="user",
        target_id=user.id,
        details={"recovery_codes": len(codes)},
    )
    return codes


def confirm_enrolment(session: Session, *, user_id: int, code: str | None, ip: str) -> list[str]:
    """A signed-in person proves the app works; returns the recovery codes (shown once)."""
    user = signing_user(session, user_id)
    codes = _confirm(session, user, code, ip)
    session.commit()
    return codes


def enrol_and_sign_in(
    session: Session, *, user_id: int, code: str | None, ip: str, user_agent: str
) -> tuple[accounts.SignIn, list[str]]:
    """Enrolment owed at sign-in: confirm the app, then open the session; commits."""
    user = signing_user(session, user_id)
    codes = _confirm(session, user, code, ip)
    signed_in = accounts.finish_sign_in(
        session, user=user, ip=ip, user_agent=user_agent, method="totp"
    )
    session.commit()
    return signed_in, codes


def _reauthenticate(
    session: Session, user: User, password: str, code: str | None, ip: str, *, where: str
):
    if not accounts.password_matches(user, password, where=where, ip=ip):
        raise TwoFactorError("The current password is wrong.")
    reauthenticate_code(session, user=user, code=code, ip=ip)


def regenerate_recovery_codes(
    session: Session, *, user_id: int, password: str, code: str | None, ip: str
) -> list[str]:
    """New recovery codes (the old ones stop working) after password and code; commits."""
    user = signing_user(session, user_id)
    if authenticator(session, user.id) is None:
        raise TwoFactorError("Set up two-factor sign-in first.")
    _reauthenticate(session, user, password, code, ip, where="recovery_codes")
    codes = _new_recovery_codes(session, user.id)
    audit.record(
        session,
        actor=user.email,
        action="2fa.recovery_regenerated",
        target_type="user",
        target_id=user.id,
        details={"recovery_codes": len(codes)},
    )
    session.commit()
    return codes


def remove_own(session: Session, *, user_id: int, password: str, code: str | None, ip: str) -> None:
    """Remove one's own authenticator (e.g. a new phone); every session ends, this one too.

    Ending this session as well means a role that requires two-factor sign-in enrols again at
    the next sign-in instead of carrying on without it.
    """
    user = signing_user(session, user_id)
    _reauthenticate(session, user, password, code, ip, where="two_factor_removal")
    _remove(session, user.id)
    login_sessions.revoke_sessions(session, user_id=user.id, reason="2fa_removed")
    audit.record(
        session,
        actor=user.email,
        action="2fa.reset",
        target_type="user",
        target_id=user.id,
        details={"by": "self"},
    )
    session.commit()


def _remove(session: Session, user_id: int) -> None:
    row = session.get(UserTotp, user_id)
    if row is not None:
        session.delete(row)
    for code in session.exec(select(RecoveryCode).where(RecoveryCode.user_id == user_id)).all():
        session.delete(code)


def admin_reset(session: Session, *, actor: str, user_id: int) -> None:
    """An admin removes someone's authenticator (lost phone); all their sessions end."""
    user = session.get(User, user_id)
    if user is None:
        raise TwoFactorError("There is no such account.")
    _remove(session, user.id)
    login_sessions.revoke_sessions(session, user_id=user.id, reason="2fa_reset")
    audit.record(
        session,
        actor=actor,
        action="2fa.reset",
        target_type="user",
        target_id=user.id,
        details={"by": "admin"},
    )
    session.commit()
