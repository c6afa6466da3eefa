"""Who is told what: one function per event, called in the transaction of the change.

Texts name batches and corrections by number, with counts, environment names and the reasons
officers typed — never a data subject's identifier, and no text Heap answered (it may echo one).
"""

from __future__ import annotations

from datetime import date

from flask import current_app, has_app_context
from sqlmodel import Session, select

from webapp.accounts import four_eyes
from webapp.models import (
    Batch,
    BatchState,
    Correction,
    Environment,
    NotificationKind,
    Role,
    User,
    utcnow,
)
from webapp.notifications.inbox import notify

Kind = NotificationKind
APPROVER_ROLES = (Role.OFFICER.value, Role.ADMIN.value)


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def _environment_name(session: Session, environment_id: int) -> str:
    env = session.get(Environment, environment_id)
    return env.name if env is not None else f"environment {environment_id}"


def eligible_approvers(session: Session, *, author_id: int | None, author_email: str = "") -> list:
    """Active officers and admins four-eyes lets approve the author's work (accounts/four_eyes)."""
    min_age = current_app.config.get("DESK_APPROVER_MIN_AGE_HOURS", 0) if has_app_context() else 0
    now = utcnow()
    people = session.exec(
        select(User)
        .where(User.is_active.is_(True), User.role.in_(APPROVER_ROLES))
        .order_by(User.id)
    ).all()
    chosen = []
    for person in people:
        if author_id is None:
            # Corrections from before authors were kept: the author is known by e-mail only.
            if person.email != author_email:
                chosen.append(person.id)
            continue
        refusal = four_eyes.approval_refusal(
            session, person, author_id, now=now, min_age_hours=min_age
        )
        if refusal is None:
            chosen.append(person.id)
    return chosen


def batch_awaits_approval(session: Session, batch: Batch, *, again: bool = False) -> None:
    """Tell everyone who may approve the batch that it waits for them."""
    if again:
        text = (
            f"Batch #{batch.id} needs your approval again: the subjects to send changed after it "
            f"was approved ({_plural(batch.manifest_count, 'subject')} to delete now)."
        )
    else:
        env = _environment_name(session, batch.environment_id)
        text = (
            f"Batch #{batch.id} awaits your approval: "
            f"{_plural(batch.manifest_count, 'subject')} to delete in {env}."
        )
    notify(
        session,
        user_ids=eligible_approvers(session, author_id=batch.uploaded_by),
        kind=Kind.BATCH_AWAITS_APPROVAL,
        text=text,
        batch_id=batch.id,
    )


def batch_rejected(session: Session, batch: Batch, *, reason: str) -> None:
    """Tell the uploader that the batch was rejected, and why."""
    notify(
        session,
        user_ids=[batch.uploaded_by],
        kind=Kind.BATCH_REJECTED,
        text=f"Your batch #{batch.id} was rejected: {reason}",
        batch_id=batch.id,
    )


def batch_settled(session: Session, batch: Batch, state: BatchState) -> None:
    """Tell the uploader that the batch completed or failed (other states tell nobody)."""
    if state == BatchState.COMPLETE:
        kind = Kind.BATCH_COMPLETED
        text = (
            f"Your batch #{batch.id} is complete: Heap deleted "
            f"{_plural(batch.completed_count, 'subject')}. Its certificate and evidence are ready."
        )
    elif state == BatchState.FAILED:
        kind = Kind.BATCH_FAILED
        text = (
            f"Your batch #{batch.id} failed: Heap refused it, or part of it, for good. Open the "
            "batch to see why, correct the cause, then retry it."
        )
    else:
        return
    notify(session, user_ids=[batch.uploaded_by], kind=kind, text=text, batch_id=batch.id)


def deadline_at_risk(
    session: Session, batch: Batch, *, overdue: int, due_soon: int, today: date
) -> None:
    """Tell the uploader that deadlines of the batch have passed or are close (Art. 12(3))."""
    parts = []
    if overdue:
        parts.append(f"{_plural(overdue, 'subject')} overdue")
    if due_soon:
        parts.append(f"{_plural(due_soon, 'subject')} due within 7 days")
    notify(
        session,
        user_ids=[batch.uploaded_by],
        kind=Kind.DEADLINE_AT_RISK,
        text=f"Deadlines at risk in your batch #{batch.id}: {' and '.join(parts)} "
        f"(as of {today.isoformat()}, GDPR Art. 12(3)).",
        batch_id=batch.id,
    )


def correction_awaits_approval(session: Session, correction: Correction) -> None:
    """Tell everyone who may approve the correction that it waits for them."""
    env = _environment_name(session, correction.environment_id)
    operation = correction.operation.replace("_", " ")
    notify(
        session,
        user_ids=eligible_approvers(
            session, author_id=correction.author_id, author_email=correction.actor
        ),
        kind=Kind.CORRECTION_AWAITS_APPROVAL,
        text=f"Correction #{correction.id} awaits your approval: {operation}, "
        f"{_plural(correction.item_count, 'item')} in {env}.",
        correction_id=correction.id,
    )
