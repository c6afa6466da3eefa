"""A daily word to each uploader whose batch holds deadlines that passed or fall within 7 days.

The scheduler tick runs hourly; a batch's uploader is told at most once per UTC day, however
many ticks and schedulers there are (the notification of the day is the memory).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, select

from webapp.db import session_scope
from webapp.erasure.deadlines import (
    DUE_SOON_DAYS,
    OPEN_SUBJECT_STATES,
    WITHDRAWN_BATCH_STATES,
    today_utc,
)
from webapp.lease import lease_is_current
from webapp.models import Batch, Notification, NotificationKind, RowClass, Subject
from webapp.notifications import events


def batches_at_risk(session: Session, today: date) -> list[tuple[int, int, int]]:
    """(batch id, overdue, due within DUE_SOON_DAYS) of batches with deletions still owed."""
    return list(
        session.exec(
            select(
                Subject.batch_id,
                sa.func.count().filter(Subject.due_on < today),
                sa.func.count().filter(Subject.due_on >= today),
            )
            .join(Batch, Batch.id == Subject.batch_id)
            .where(
                Subject.classification == RowClass.VALID.value,
                Subject.state.in_([s.value for s in OPEN_SUBJECT_STATES]),
                Batch.state.not_in([s.value for s in WITHDRAWN_BATCH_STATES]),
                Subject.due_on <= today + timedelta(days=DUE_SOON_DAYS),
            )
            .group_by(Subject.batch_id)
            .order_by(Subject.batch_id)
        ).all()
    )


def notify_at_risk(session: Session, *, today: date) -> int:
    """Tell the uploaders of batches at risk not yet told today; commits; returns how many."""
    start = datetime.combine(today, time.min, UTC)
    told = set(
        session.exec(
            select(Notification.batch_id).where(
                Notification.kind == NotificationKind.DEADLINE_AT_RISK.value,
                Notification.created_at >= start,
            )
        ).all()
    )
    count = 0
    for batch_id, overdue, due_soon in batches_at_risk(session, today):
        if batch_id in told:
            continue
        batch = session.get(Batch, batch_id)
        events.deadline_at_risk(session, batch, overdue=overdue, due_soon=due_soon, today=today)
        count += 1
    session.commit()
    return count


def scheduled_notices(app: Flask, fencing_token: int, *, today: date | None = None) -> int:
    """The scheduler's tick: today's deadline notices, in the lease holder only."""
    with session_scope(write=True, app=app) as session:
        if not lease_is_current(session, fencing_token):
            return 0
        return notify_at_risk(session, today=today or today_utc())
