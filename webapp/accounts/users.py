"""Accounts, passwords and sign-in with throttling (use cases)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlmodel import Session, select

from webapp.accounts import two_factor
from webapp.accounts.passwords import is_common_password
from webapp.accounts.sessions import revoke_sessions
from webapp.accounts.sign_in import (
    AccountError,
    AccountLocked,
    SignIn,
    count_failure,
    email_fingerprint,
    finish_sign_in,
    normalise_email,
)
from webapp.models import ApiToken, LoginAttempt, Role, User, utcnow
from webapp.trail import audit

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
IP_WINDOW_MINUTES = 15
IP_MAX_FAILURES = 20


def _hasher() -> PasswordHasher:
    # argon2id with the library's defaults (RFC 9106 low-memory profile); tests may lower them.
    params = current_app.config.get("ARGON2_PARAMS") or {}
    return PasswordHasher(**params)


def hash_password(password: str) -> str:
    """argon2id hash of a password."""
    return _hasher().hash(password)


def _verify(user: User, password: str) -> bool:
    try:
        return _hasher().verify(user.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False


def reauthenticate(
    session: Session, *, user: User, password: str, where: str, ip: str = ""
) -> None:
    """The current password again before a security change; commits a failure, then raises.

    A wrong password counts toward the same lockout as a failed sign-in and is audited as
    `account.reauth_failed` (where, how many in a row; never the password). The failure that
    locks the account also ends its sessions and raises AccountLocked, so a stolen session
    cannot keep guessing. A locked account is refused without looking at the password.
    """
    now = utcnow()
    if user.is_locked(now):
        raise AccountLocked()
    if _verify(user, password):
        # A right password clears the count only when nothing else is owed: with an
        # authenticator the code must be right too (two_factor.reauthenticate_code clears
        # it), or the right password would buy unlimited guesses at the code.
        if user.failed_logins and two_factor.authenticator(session, user.id) is None:
            user.failed_logins = 0
        return
    session.rollback()  # commit the failure and nothing else of the request
    failures = user.failed_logins + 1
    locked = count_failure(session, user, now=now, end_sessions=True)
    details = {"where": where, "failures": failures}
    if ip:
        details["ip"] = ip
    audit.record(
        session,
        actor=user.email,
        action="account.reauth_failed",
        target_type="user",
        target_id=user.id,
        details=details,
    )
    session.commit()
    if locked:
        raise AccountLocked()
    raise AccountError("The current password is wrong.")


def password_matches(user: User, password: str, *, where: str, ip: str = "") -> bool:
    """True for the account's current password; a wrong one is a failed re-authentication.

    Used by two-factor set-up, removal and new recovery codes (accounts/enrolment.py): the
    failure is counted, audited and committed as `reauthenticate` does, and the failure that
    locks the account raises AccountLocked.
    """
    session = Session.object_session(user)
    if session is None:  # a detached row: nothing to count with, only the check
        return _verify(user, password)
    try:
        reauthenticate(session, user=user, password=password, where=where, ip=ip)
    except AccountLocked:
        raise
    except AccountError:
        return False
    return True


def check_password_rules(password: str) -> None:
    """Length rules and a common-password list (NIST SP 800-63B: no composition rules)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"The password must be at most {MAX_PASSWORD_LENGTH} characters long.")
    if is_common_password(password):
        raise AccountError("This password is too common; choose another.")


def user_count(session: Session) -> int:
    """How many accounts exist (none means the setup page is open)."""
    return session.exec(select(sa.func.count()).select_from(User)).one()


def find_user(session: Session, email: str) -> User | None:
    """The account with this sign-in name, if any."""
    return session.exec(select(User).where(User.email == normalise_email(email))).first()


def create_user(
    session: Session,
    *,
    actor: str,
    email: str,
    password: str,
    role: str,
    created_by: int | None = None,
) -> User:
    """Create an account (`created_by`: the admin's account id, kept for four-eyes); no commit."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise AccountError("Enter the person's e-mail address.")
    if role not in {r.value for r in Role}:
        raise AccountError("The role must be auditor, officer or admin.")
    check_password_rules(password)
    if find_user(session, email):
        raise AccountError("An account with this e-mail address already exists.")
    user = User(
        email=email, password_hash=hash_password(password), role=role, created_by=created_by
    )
    user.password_changed_at = utcnow()
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.created",
        target_type="user",
        target_id=user.id,
        details={"email_fp": email_fingerprint(email), "role": role, "created_by": created_by},
    )
    return user


def create_first_admin(session: Session, *, email: str, password: str) -> User:
    """The setup page's use case: only while no account exists."""
    if user_count(session):
        raise AccountError("The desk is already set up; sign in instead.")
    user = create_user(session, actor="setup", email=email, password=password, role="admin")
    session.commit()
    return user


def _ip_failures(session: Session, ip: str, now: datetime) -> int:
    since = now - timedelta(minutes=IP_WINDOW_MINUTES)
    query = (
        select(sa.func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.ip == ip, LoginAttempt.at >= since, LoginAttempt.succeeded.is_(False))
    )
    return session.exec(query).one()


def authenticate(
    session: Session, *, email: str, password: str, ip: str, user_agent: str = ""
) -> SignIn:
    """Check a password, applying account lockout and per-IP limits; commits either way."""
    now = utcnow()
    email_fp = email_fingerprint(email)
    # One message for a wrong password, an unknown address, a locked or a disabled account:
    # anything more specific would tell a stranger which addresses have accounts.
    failure_message = (
        "The e-mail address or password is wrong. After 5 failed attempts an account is "
        "locked for 15 minutes (an admin can unlock it sooner)."
    )
    if _ip_failures(session, ip, now) >= IP_MAX_FAILURES:
        session.add(LoginAttempt(ip=ip, email_fingerprint=email_fp, succeeded=False))
        audit.record(
            session,
            actor="anonymous",
            action="login.ip_throttled",
            target_type="ip",
            target_id=ip,
            details={"email_fp": email_fp},
        )
        session.commit()
        raise AccountError("Too many failed sign-ins from your network. Try again in 15 minutes.")

    user = find_user(session, email)
    ok = False
    if user is not None and user.is_active and not user.is_locked(now):
        try:
            ok = _hasher().verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
    else:
        # Spend the same time as a real check so response time does not reveal accounts.
        _hasher().hash(password)

    session.add(LoginAttempt(ip=ip, email_fingerprint=email_fp, succeeded=ok))
    if not ok:
        details = {"email_fp": email_fp, "ip": ip}
        target_id = user.id if user else None
        if user is not None and user.is_locked(now):
            audit.record(
                session,
                actor="anonymous",
                action="login.refused_locked",
                target_type="user",
                target_id=target_id,
                details=details,
            )
            session.commit()
            raise AccountError(failure_message)
        if user is not None and not user.is_active:
            audit.record(
                session,
                actor="anonymous",
                action="login.refused_disabled",
                target_type="user",
                target_id=target_id,
                details=details,
            )
            session.commit()
            raise AccountError(failure_message)
        audit.record(
            session,
            actor="anonymous",
            action="login.failed",
            target_type="user",
            target_id=target_id,
            details=details,
        )
        if user is not None:
            count_failure(session, user, now=now)
        session.commit()
        raise AccountError(failure_message)

    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    stage = two_factor.pending_stage(session, user)
    if stage is not None:
        # The failure count is NOT reset here: bad codes after a right password add to it.
        audit.record(
            session,
            actor=user.email,
            action="login.password_ok",
            target_type="user",
            target_id=user.id,
            details={"ip": ip, "second_factor": stage},
        )
        session.commit()
        return SignIn(user=user, session_token="", second_factor=stage)
    signed_in = finish_sign_in(session, user=user, ip=ip, user_agent=user_agent)
    session.commit()
    return signed_in


def change_password(
    session: Session,
    *,
    user: User,
    current: str,
    new: str,
    keep_session_id: int | None,
    code: str | None = None,
    keep_token_ids: Collection[int] = (),
    ip: str = "",
) -> None:
    """Change one's own password (re-authenticated: password, and a code if enrolled).

    The account's other sessions end, and so do its API tokens except those named in
    `keep_token_ids` (the owner's own live tokens, ticked on the same page): a password is
    changed when it may be known to someone else, and tokens should not outlive that by default.
    """
    reauthenticate(session, user=user, password=current, where="password_change", ip=ip)
    two_factor.reauthenticate_code(session, user=user, code=code, ip=ip)
    check_password_rules(new)
    if new == current:
        raise AccountError("The new password must differ from the current one.")
    keep = set(keep_token_ids)
    if not keep <= {token.id for token in live_api_tokens(session, user.id)}:
        raise AccountError("Only your own active API tokens can be kept; reload the page.")
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    revoke_sessions(session, user_id=user.id, reason="password_changed", keep_id=keep_session_id)
    revoked = _revoke_api_tokens(session, user.id, reason="password_changed", keep=keep)
    audit.record(
        session,
        actor=user.email,
        action="user.password_changed",
        target_type="user",
        target_id=user.id,
        details={"api_tokens_revoked": revoked, "api_tokens_kept": len(keep)},
    )
    session.commit()


def _admin_count(session: Session) -> int:
    query = (
        select(sa.func.count())
        .select_from(User)
        .where(User.role == Role.ADMIN.value, User.is_active.is_(True))
    )
    return session.exec(query).one()


def update_user(
    session: Session,
    *,
    actor: str,
    user_id: int,
    role: str | None = None,
    active: bool | None = None,
) -> User:
    """Change an account's role or disable/enable it; its sessions end on any change."""
    user = session.get(User, user_id)
    if user is None:
        raise AccountError("There is no such account.")
    demoting = role is not None and role != Role.ADMIN.value and user.role == Role.ADMIN.value
    disabling = active is False and user.role == Role.ADMIN.value and user.is_active
    if (demoting or disabling) and _admin_count(session) <= 1:
        raise AccountError("This is the last admin: make another admin first.")
    changes = {}
    if role is not None and role != user.role:
        if role not in {r.value for r in Role}:
            raise AccountError("The role must be auditor, officer or admin.")
        changes["role"] = {"from": user.role, "to": role}
        user.role = role
    if active is not None and active != user.is_active:
        changes["active"] = {"from": user.is_active, "to": active}
        user.is_active = active
    if not changes:
        return user
    revoke_sessions(session, user_id=user.id, reason="account_changed")
    if active is False:
        changes["api_tokens_revoked"] = _revoke_api_tokens(
            session, user.id, reason="account_disabled"
        )
    audit.record(
        session,
        actor=actor,
        action="user.updated",
        target_type="user",
        target_id=user.id,
        details=changes,
    )
    session.commit()
    return user


def unlock_user(session: Session, *, actor: str, user_id: int) -> None:
    """Lift a lockout before it expires."""
    user = session.get(User, user_id)
    if user is None:
        raise AccountError("There is no such account.")
    user.locked_until = None
    user.failed_logins = 0
    audit.record(
        session, actor=actor, action="user.unlocked", target_type="user", target_id=user.id
    )
    session.commit()


def reset_password(session: Session, *, actor: str, user_id: int, password: str) -> None:
    """An admin sets a new password for someone; their sessions end."""
    user = session.get(User, user_id)
    if user is None:
        raise AccountError("There is no such account.")
    check_password_rules(password)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    revoke_sessions(session, user_id=user.id, reason="password_reset")
    # An admin resets a password when an account may be in the wrong hands: its API tokens
    # are ended too, and their owner creates new ones after signing in.
    revoked = _revoke_api_tokens(session, user.id, reason="password_reset")
    audit.record(
        session,
        actor=actor,
        action="user.password_reset",
        target_type="user",
        target_id=user.id,
        details={"api_tokens_revoked": revoked},
    )
    session.commit()


def live_api_tokens(session: Session, user_id: int) -> list[ApiToken]:
    """An account's API tokens that still work (neither revoked nor expired), by name."""
    query = select(ApiToken).where(
        ApiToken.user_id == user_id,
        ApiToken.revoked_at.is_(None),
        ApiToken.expires_at > utcnow(),
    )
    return list(session.exec(query.order_by(ApiToken.name, ApiToken.id)).all())


def _revoke_api_tokens(
    session: Session, user_id: int, *, reason: str, keep: Collection[int] = ()
) -> int:
    """End every live API token of an account but those in `keep`; return how many."""
    live = session.exec(
        select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    ).all()
    revoked = [token for token in live if token.id not in keep]
    for token in revoked:
        token.revoked_at = utcnow()
        token.revoked_reason = reason
    return len(revoked)


def throttled_ips(session: Session) -> list[tuple[str, int]]:
    """IPs with failed sign-ins in the current window, most failures first."""
    since = utcnow() - timedelta(minutes=IP_WINDOW_MINUTES)
    query = (
        select(LoginAttempt.ip, sa.func.count())
        .where(LoginAttempt.at >= since, LoginAttempt.succeeded.is_(False))
        .group_by(LoginAttempt.ip)
        .order_by(sa.func.count().desc())
    )
    return [(ip, n) for ip, n in session.exec(query).all()]
