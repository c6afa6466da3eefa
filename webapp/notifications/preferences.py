"""Each person's choice of which notifications also come by e-mail; changes are audited."""

from __future__ import annotations

from sqlmodel import Session, select

from webapp.models import NotificationKind, NotificationPreference, utcnow
from webapp.trail import audit

Kind = NotificationKind
# What each kind tells, as the page, the form and a mail's subject say it.
KIND_LABELS: dict[Kind, str] = {
    Kind.BATCH_AWAITS_APPROVAL: "A batch awaits your approval",
    Kind.CORRECTION_AWAITS_APPROVAL: "A correction awaits your approval",
    Kind.BATCH_REJECTED: "Your batch was rejected",
    Kind.BATCH_FAILED: "Your batch failed",
    Kind.BATCH_COMPLETED: "Your batch is complete",
    Kind.DEADLINE_AT_RISK: "A deadline you own is at risk",
}
# By default, mail what someone must act on or is waiting for: approvals awaiting them and
# their own batches' outcomes. Deadline warnings repeat daily, so they stay in the inbox.
DEFAULT_EMAIL: dict[Kind, bool] = {kind: kind != Kind.DEADLINE_AT_RISK for kind in Kind}
CHANGED_ACTION = "notification.preferences_changed"


def email_preferences(session: Session, user_id: int) -> dict[Kind, bool]:
    """Every kind → whether the person gets it by e-mail (their choice, else the default)."""
    chosen = {
        row.kind: row.email
        for row in session.exec(
            select(NotificationPreference).where(NotificationPreference.user_id == user_id)
        )
    }
    return {kind: chosen.get(kind.value, DEFAULT_EMAIL[kind]) for kind in Kind}


def update_email_preferences(
    session: Session, *, actor: str, user_id: int, email: dict[Kind, bool]
) -> dict[Kind, bool]:
    """Store the person's choices for the kinds given; audit what changed; commits."""
    before = email_preferences(session, user_id)
    changed = {Kind(kind): bool(on) for kind, on in email.items() if before[Kind(kind)] != on}
    if not changed:
        return before
    now = utcnow()
    for kind, on in changed.items():
        row = session.get(NotificationPreference, (user_id, kind.value))
        if row is None:
            row = NotificationPreference(user_id=user_id, kind=kind.value, email=on)
        row.email, row.updated_at = on, now
        session.add(row)
    audit.record(
        session,
        actor=actor,
        action=CHANGED_ACTION,
        target_type="user",
        target_id=user_id,
        details={"email": {kind.value: on for kind, on in sorted(changed.items())}},
    )
    session.commit()
    return email_preferences(session, user_id)
