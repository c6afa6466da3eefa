"""A person's inbox: notifications stored, listed newest first, counted and marked read."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import Session, select

from webapp.models import Notification, NotificationKind, utcnow

LIST_LIMIT = 100
MAX_TEXT_LENGTH = 1000


class NotificationNotFound(LookupError):
    """No notification with this id belongs to this person."""


def notify(
    session: Session,
    *,
    user_ids: Iterable[int],
    kind: NotificationKind,
    text: str,
    batch_id: int | None = None,
    correction_id: int | None = None,
) -> list[Notification]:
    """Add one notification per person in the caller's transaction (the caller commits)."""
    text = text if len(text) <= MAX_TEXT_LENGTH else text[: MAX_TEXT_LENGTH - 1] + "…"
    rows = [
        Notification(
            user_id=user_id,
            kind=kind.value,
            text=text,
            batch_id=batch_id,
            correction_id=correction_id,
        )
        for user_id in dict.fromkeys(user_ids)
    ]
    session.add_all(rows)
    return rows


def notifications_for(session: Session, user_id: int, *, limit: int = LIST_LIMIT) -> list:
    """The person's newest notifications first."""
    return list(
        session.exec(
            select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(Notification.id.desc())
            .limit(limit)
        ).all()
    )


def unread_count(session: Session, user_id: int) -> int:
    """How many of the person's notifications are unread."""
    return session.exec(
        select(sa.func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    ).one()


def mark_read(session: Session, *, user_id: int, notification_id: int) -> Notification:
    """Mark one of the person's notifications read (again: no change); commits."""
    row = session.get(Notification, notification_id)
    if row is None or row.user_id != user_id:
        raise NotificationNotFound(f"You have no notification {notification_id}.")
    if row.read_at is None:
        row.read_at = utcnow()
        session.add(row)
        session.commit()
    return row


def mark_all_read(session: Session, *, user_id: int) -> int:
    """Mark every unread notification of the person read; commits; returns how many."""
    result = session.exec(
        sa.update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    session.commit()
    return result.rowcount
