"""What the admins' Sign-in security page reads from the audit trail.

Re-authentication failures (a wrong current password or code typed inside a session: a stolen
session guessing looks like this) and the four-eyes refusals and near-misses of approvals
(accounts/four_eyes.py). Read-only, newest first, by the indexed (action, seq) columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from webapp.accounts.four_eyes import NEAR_MISS_ACTION, REFUSED_ACTION
from webapp.models import AuditEntry, User

REAUTH_ACTION = "account.reauth_failed"
CODE_FAILED_ACTION = "2fa.failed"
# Canonical JSON (sorted keys, no spaces) makes this exact text of a wrong code in a re-auth.
REAUTH_CODE_MARK = '%"stage":"reauth"%'
SHOWN = 50

WHERE = {
    "password_change": "changing the password",
    "two_factor_setup": "setting up two-factor sign-in",
    "two_factor_removal": "removing the authenticator",
    "recovery_codes": "making new recovery codes",
}
RULES = {
    "uploader": "the approver is the author (uploaded the batch, asked for the correction)",
    "creator": "the approver's account was created by the uploader",
    "created": "the approver created the uploader's account",
    "account_age": "the approver's account is younger than DESK_APPROVER_MIN_AGE_HOURS",
    "same_creator": "approver and uploader were created by the same account",
    "young_account": "the approver's account is less than a day old",
}


@dataclass(frozen=True)
class ReauthFailure:
    """One wrong password or code typed to confirm a security change."""

    at: datetime
    email: str
    what: str  # "password" or "code"
    where: str
    failures: int | None
    ip: str | None


@dataclass(frozen=True)
class FourEyesEvent:
    """One approval refused by a four-eyes rule, or allowed but close to one."""

    at: datetime
    refused: bool
    rule: str
    rule_text: str
    target_type: str
    target_id: str
    approver: str
    author: str


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _newest(session: Session, condition, limit: int) -> list[AuditEntry]:
    query = select(AuditEntry).where(condition).order_by(AuditEntry.seq.desc()).limit(limit)
    return list(session.exec(query).all())


def reauth_failures(session: Session, *, limit: int = SHOWN) -> list[ReauthFailure]:
    """The most recent failed re-authentications, newest first."""
    condition = sa.or_(
        AuditEntry.action == REAUTH_ACTION,
        sa.and_(
            AuditEntry.action == CODE_FAILED_ACTION,
            AuditEntry.details.like(REAUTH_CODE_MARK),
        ),
    )
    failures = []
    for entry in _newest(session, condition, limit):
        details = json.loads(entry.details)
        by_password = entry.action == REAUTH_ACTION
        where = details.get("where", "") if by_password else ""
        failures.append(
            ReauthFailure(
                at=_at(entry.at),
                email=entry.actor,
                what="password" if by_password else "code",
                where=WHERE.get(where, where or "a security change"),
                failures=details.get("failures"),
                ip=details.get("ip"),
            )
        )
    return failures


def four_eyes_events(session: Session, *, limit: int = SHOWN) -> list[FourEyesEvent]:
    """The most recent four-eyes refusals and near-misses, with the accounts' e-mails."""
    entries = _newest(session, AuditEntry.action.in_([REFUSED_ACTION, NEAR_MISS_ACTION]), limit)
    parsed = [(entry, json.loads(entry.details)) for entry in entries]
    ids = {
        value
        for _, details in parsed
        for value in (details.get("approver_id"), details.get("author_id"))
        if isinstance(value, int)
    }
    emails = dict(session.exec(select(User.id, User.email).where(User.id.in_(ids))).all())

    def email(user_id) -> str:
        return emails.get(user_id, f"account #{user_id}" if user_id is not None else "unknown")

    return [
        FourEyesEvent(
            at=_at(entry.at),
            refused=entry.action == REFUSED_ACTION,
            rule=details.get("rule", ""),
            rule_text=RULES.get(details.get("rule", ""), details.get("rule") or "unknown rule"),
            target_type=entry.target_type,
            target_id=entry.target_id,
            approver=email(details.get("approver_id")),
            author=email(details.get("author_id")),
        )
        for entry, details in parsed
    ]
