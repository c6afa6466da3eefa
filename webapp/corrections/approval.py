"""Four-eyes for corrections: a second officer approves what the environment's policy holds back.

An environment's tool policy may ask that a correction of more than N items (N = 0: every one)
be approved before it is sent. `service.send` then stores it `awaiting_approval` with its calls
(bodies encrypted, exactly what will be sent) and sends nothing. Here a second officer approves
it — under the same cross-account rules as batches (accounts/four_eyes.py) — and the stored
bodies, exactly those, are sent; or rejects it with a reason. The author may withdraw their own
(it is recorded as rejected, `withdrawn`), but never approve it. Whether the operation is still
allowed, the policy's guardrails and the re-ingestion guard are checked again at approval: time
has passed since the request.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlmodel import Session, select

from webapp import tool_policy
from webapp.accounts import four_eyes
from webapp.accounts.users import find_user
from webapp.corrections import service
from webapp.corrections.guard import deleting_batches
from webapp.corrections.pacing import Pacer
from webapp.corrections.plans import CorrectionInputError
from webapp.corrections.sending import calls_of, record_outcome, send_calls
from webapp.crypto import decrypt
from webapp.models import Correction, Environment, Role, User, utcnow
from webapp.models import CorrectionOperation as Op
from webapp.models import CorrectionState as State
from webapp.trail import audit

MAX_REASON = service.MAX_REASON
LIST_LIMIT = 10
# The policy operation (webapp.tool_policy.OPERATIONS) each stored correction operation uses.
POLICY_OPERATION = {
    Op.IDENTIFY: "identify",
    Op.USER_PROPERTIES: "user_properties",
    Op.USER_PROPERTIES_BULK: "user_properties",
    Op.ACCOUNT_PROPERTIES: "account_properties",
    Op.ACCOUNT_PROPERTIES_BULK: "account_properties",
    Op.LINK_ACCOUNT: "link_account",
    Op.TRACK: "track",
    Op.TRACK_WITH_USER_PROPERTIES: "track",
    Op.TRACK_BULK: "track",
}
STATE_LABELS = {
    State.AWAITING_APPROVAL: "awaiting approval",
    State.REJECTED: "rejected",
    State.SENDING: "being sent",
    State.SUCCEEDED: "sent (Heap accepted it)",
    State.PARTIAL: "partly sent",
    State.FAILED: "failed",
}


class ApprovalRefused(CorrectionInputError):
    """This account may not decide on this correction (role, or four-eyes across accounts)."""

    code = "forbidden"


class SelfApproval(ApprovalRefused):
    code = "self_approval"


class FourEyesRefused(ApprovalRefused):
    code = "four_eyes"


class WrongState(CorrectionInputError):
    """The correction does not await approval (any more)."""

    code = "wrong_state"


class GuardRefusedAtApproval(CorrectionInputError):
    code = "reingestion_guard"


class ReasonRequired(CorrectionInputError):
    code = "reason_required"


def _officer(session: Session, actor: str) -> User:
    user = find_user(session, actor)
    if user is None or not user.is_active or not user.role_enum.allows(Role.OFFICER):
        raise ApprovalRefused("Only officers and admins can approve or reject corrections.")
    return user


def _awaiting(session: Session, correction_id: int, doing: str) -> Correction:
    """The correction, locked for this transaction, which must await approval."""
    correction = session.exec(
        select(Correction).where(Correction.id == correction_id).with_for_update()
    ).first()
    if correction is None:
        raise service.CorrectionNotFound(f"There is no correction {correction_id}.")
    if correction.state != State.AWAITING_APPROVAL:
        label = STATE_LABELS.get(correction.state, correction.state)
        raise WrongState(
            f"Correction {correction.id} is {label}; only a correction awaiting approval can be "
            f"{doing}. Nothing changed."
        )
    return correction


def is_author(user: User, correction: Correction) -> bool:
    """The account that asked for it (corrections from before accounts were kept: by e-mail)."""
    if correction.author_id is not None:
        return correction.author_id == user.id
    return correction.actor == user.email


def _refusal(session: Session, user: User, correction: Correction) -> four_eyes.Refusal | None:
    what = "this correction"
    if is_author(user, correction):
        return four_eyes.Refusal(
            "uploader",
            f"You are the author of {what}, so you cannot approve it: a different officer or "
            "admin must check and approve it (four-eyes principle). You can withdraw it.",
        )
    if correction.author_id is None:
        return None  # no account to trace creators through
    return four_eyes.approval_refusal(
        session,
        user,
        correction.author_id,
        now=utcnow(),
        min_age_hours=current_app.config.get("DESK_APPROVER_MIN_AGE_HOURS", 0),
        what=what,
    )


def approval_refusal_for(session: Session, *, user_id: int, correction: Correction) -> str | None:
    """Why this account could not approve the correction, or None (for the page; not audited)."""
    user = session.get(User, user_id)
    if user is None:
        return None
    refusal = _refusal(session, user, correction)
    return refusal.message if refusal else None


def _refuse_dependent_approver(
    session: Session, *, actor: str, user: User, correction: Correction
) -> None:
    refusal = _refusal(session, user, correction)
    if refusal is None:
        return
    four_eyes.record_refusal(  # rolls back, audits the attempt and commits it
        session,
        actor=actor,
        refusal=refusal,
        approver_id=user.id,
        author_id=correction.author_id,
        target_type="correction",
        target_id=correction.id,
    )
    error = SelfApproval if refusal.rule == "uploader" else FourEyesRefused
    raise error(refusal.message + " Nothing was sent.")


def _bodies(session: Session, correction: Correction) -> list[tuple[int, str, dict[str, Any]]]:
    """(call id, operation, body) of every stored call, in order: exactly what was approved."""
    return [
        (row.id, row.operation, json.loads(decrypt(row.body_encrypted)))
        for row in calls_of(session, correction.id)
    ]


def _still_allowed(session: Session, correction: Correction, env: Environment, bodies) -> None:
    """The policy, the environment and the desk's deletions, as they are now."""
    policy = tool_policy.policy_of(session, env)
    operation = POLICY_OPERATION[Op(correction.operation)]
    if not policy.allows(operation):
        raise service.OperationDisabled(tool_policy.disabled_message(env, operation))
    keys = service.keys_in_bodies(body for _, _, body in bodies)
    problems = tool_policy.correction_refusals(
        policy, items=correction.item_count, property_keys=keys
    )
    if problems:
        raise service.PolicyRefused(problems + ["Reject it; the author can make a new one."])
    if any(body.get("app_id") != env.app_id for _, _, body in bodies):
        raise WrongState(
            "The environment's app_id changed since this correction was requested; reject it "
            "and make a new one."
        )
    prints = json.loads(correction.subject_fingerprints)
    if deleting_batches(session, prints) and not correction.override_reason:
        raise GuardRefusedAtApproval(
            "Since this correction was requested the desk has started deleting people it "
            "names; sending it would re-create them in Heap. Reject it; the author can make a "
            "new one (with an override reason) if it is still needed."
        )


def approve(
    session: Session, *, actor: str, correction_id: int, pacer: Pacer | None = None
) -> Correction:
    """A second officer approves: send exactly the stored bodies; commits before and after."""
    user = _officer(session, actor)
    correction = _awaiting(session, correction_id, "approved")
    _refuse_dependent_approver(session, actor=actor, user=user, correction=correction)
    env = session.get(Environment, correction.environment_id)
    bodies = _bodies(session, correction)
    _still_allowed(session, correction, env, bodies)
    client = service.client_for(env)
    now = utcnow()
    correction.state, correction.started_at = State.SENDING.value, now
    correction.decided_by, correction.decided_at = user.email, now
    audit.record(
        session,
        actor=actor,
        action="correction.approved",
        target_type="correction",
        target_id=correction.id,
        details={
            "items": correction.item_count,
            # What the approval covers: the stored bodies, by their SHA-256.
            "calls": [
                {"position": row.position, "body_sha256": row.body_sha256}
                for row in calls_of(session, correction.id)
            ],
        },
    )
    if correction.author_id is not None:
        four_eyes.record_near_misses(
            session,
            actor=actor,
            rules=four_eyes.near_misses(session, user, correction.author_id, now=now),
            approver_id=user.id,
            author_id=correction.author_id,
            target_type="correction",
            target_id=correction.id,
        )
    session.commit()  # the approval and the intent are safe before Heap is called
    outcomes = send_calls(client, bodies, pacer)
    return record_outcome(session, actor, correction.id, outcomes, "correction.sent")


def reject(session: Session, *, actor: str, correction_id: int, reason: str) -> Correction:
    """Another officer rejects it, or its author withdraws it, with a reason; nothing is sent."""
    user = _officer(session, actor)
    correction = _awaiting(session, correction_id, "rejected")
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason or len(reason) > MAX_REASON:
        raise ReasonRequired(f"Give the reason (1 to {MAX_REASON:,} characters).")
    withdrawn = is_author(user, correction)
    correction.state = State.REJECTED.value
    correction.decided_by, correction.decided_at = user.email, utcnow()
    correction.decision_reason = reason
    correction.completed_at = correction.decided_at
    audit.record(
        session,
        actor=actor,
        action="correction.rejected",
        target_type="correction",
        target_id=correction.id,
        details={"reason": reason, "withdrawn": withdrawn},
    )
    session.commit()
    return correction


def awaiting_approval(
    session: Session, *, user_id: int, limit: int = LIST_LIMIT
) -> tuple[list[Correction], int]:
    """Corrections awaiting a second officer, not this account's own: the newest, and a count."""
    where = sa.and_(
        Correction.state == State.AWAITING_APPROVAL.value,
        sa.or_(Correction.author_id.is_(None), Correction.author_id != user_id),
    )
    total = session.exec(select(sa.func.count()).select_from(Correction).where(where)).one()
    rows = session.exec(select(Correction).where(where).order_by(Correction.id.desc()).limit(limit))
    return list(rows.all()), total
