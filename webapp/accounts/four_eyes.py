"""Four-eyes across accounts: who may approve whose work.

Approver ≠ author is not enough: an admin can create a second account, sign in with it and
approve their own batch. So an account never approves the work of the account that created it,
nor of an account it created — directly or down a chain (A creates B, B creates C: C never
approves A's work, nor A C's); with DESK_APPROVER_MIN_AGE_HOURS an approver's account must also
be that old (a cooling-off period for accounts created for the occasion). What passes but looks
close — two accounts of one creator, an approver younger than a day — is a near-miss, audited
for the admins' Sign-in security page. Batch approval uses it; corrections can (issue 14).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from webapp.models import User
from webapp.trail import audit

REFUSED_ACTION = "four_eyes.refused"
NEAR_MISS_ACTION = "four_eyes.near_miss"
# An approver's account younger than this is worth a look even when no rule refuses it.
YOUNG_ACCOUNT_HOURS = 24


@dataclass(frozen=True)
class Refusal:
    """Why an approval is refused: a rule name (audited) and a message for the person."""

    rule: str  # uploader | creator | created | account_age
    message: str


def approval_refusal(
    session: Session,
    approver: User,
    author_id: int,
    *,
    now: datetime,
    min_age_hours: int,
    what: str = "this batch",
) -> Refusal | None:
    """None when `approver` may approve the work of `author_id`, else the rule that refuses."""
    if approver.id == author_id:
        return Refusal(
            "uploader",
            f"You are the author of {what}, so you cannot approve it: a different officer or "
            "admin must check and approve it (four-eyes principle).",
        )
    author = session.get(User, author_id)
    if author_id in creators_of(session, approver):
        return Refusal(
            "creator",
            f"Your account was created by the author of {what}, so you cannot approve it: "
            "four-eyes needs a second person who does not depend on the first. Ask another "
            "officer or admin to approve it.",
        )
    if author is not None and approver.id in creators_of(session, author):
        return Refusal(
            "created",
            f"You created the account of the author of {what}, so you cannot approve it: "
            "four-eyes needs a second person who does not depend on the first. Ask another "
            "officer or admin to approve it.",
        )
    if min_age_hours > 0 and approver.created_at > now - timedelta(hours=min_age_hours):
        return Refusal(
            "account_age",
            f"Your account is less than {min_age_hours} hours old, so it cannot approve "
            f"{what} yet (a cooling-off period this desk requires of approvers). Ask another "
            "officer or admin to approve it.",
        )
    return None


def creators_of(session: Session, user: User) -> set[int]:
    """The ids of the account that created `user`, of the one that created that one, and on."""
    found: set[int] = set()
    creator_id = user.created_by
    while creator_id is not None and creator_id not in found and creator_id != user.id:
        found.add(creator_id)
        creator = session.get(User, creator_id)
        creator_id = creator.created_by if creator is not None else None
    return found


def near_misses(session: Session, approver: User, author_id: int, *, now: datetime) -> list[str]:
    """Rules an allowed approval came close to: 'same_creator', 'young_account'."""
    rules = []
    author = session.get(User, author_id)
    if (
        author is not None
        and approver.created_by is not None
        and approver.created_by == author.created_by
    ):
        rules.append("same_creator")
    if approver.created_at > now - timedelta(hours=YOUNG_ACCOUNT_HOURS):
        rules.append("young_account")
    return rules


def record_refusal(
    session: Session,
    *,
    actor: str,
    refusal: Refusal,
    approver_id: int,
    author_id: int,
    target_type: str,
    target_id: int,
) -> None:
    """Audit a refusal in a transaction of its own and commit it (the approval never happens)."""
    session.rollback()
    audit.record(
        session,
        actor=actor,
        action=REFUSED_ACTION,
        target_type=target_type,
        target_id=target_id,
        details={"rule": refusal.rule, "approver_id": approver_id, "author_id": author_id},
    )
    session.commit()


def record_near_misses(
    session: Session,
    *,
    actor: str,
    rules: list[str],
    approver_id: int,
    author_id: int,
    target_type: str,
    target_id: int,
) -> None:
    """Audit each near-miss in the caller's transaction (the approval's own)."""
    for rule in rules:
        audit.record(
            session,
            actor=actor,
            action=NEAR_MISS_ACTION,
            target_type=target_type,
            target_id=target_id,
            details={"rule": rule, "approver_id": approver_id, "author_id": author_id},
        )
