"""GDPR Art. 12(3) deadlines: one calendar month from receipt, extendable by up to two more."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from webapp.models import Batch, BatchState, RowClass, Subject, SubjectState
from webapp.trail import audit

MAX_EXTENSION_MONTHS = 2
MAX_REASON_LENGTH = 2000
DUE_SOON_DAYS = 7
# Subjects whose deletion is still owed: valid, not complete, in a batch nobody withdrew.
OPEN_SUBJECT_STATES = (SubjectState.PENDING, SubjectState.SUBMITTED, SubjectState.FAILED)
WITHDRAWN_BATCH_STATES = (BatchState.REJECTED, BatchState.CANCELLED)


class DeadlineError(ValueError):
    """An extension that cannot be granted; the message is for the officer."""

    status = 400


class ExtensionConflict(DeadlineError):
    """Refused because of what is stored about the subject (its row, state, received date,
    earlier extension) or of today's date, not because of the request's form."""

    status = 409


class SubjectNotFound(DeadlineError):
    """No subject has this id."""

    status = 404


def today_utc() -> date:
    """Today's date in UTC: the desk counts every deadline in UTC."""
    return datetime.now(UTC).date()


def add_months(day: date, months: int) -> date:
    """The same day `months` later; a month without that day ends on its last day.

    This is how a period "of one month" is counted in EU law (Regulation 1182/71, Art. 3(2)(c)):
    Jan 31 + 1 month = Feb 28 (29 in a leap year), Mar 31 + 1 month = Apr 30.
    """
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_on(received_on: date, extension_months: int = 0) -> date:
    """The date by which the erasure must be done: one month, plus any extension."""
    return add_months(received_on, 1 + extension_months)


def days_left(due: date, today: date | None = None) -> int:
    """Days until `due` (0 on the day itself, negative once overdue)."""
    return (due - (today or today_utc())).days


def urgency(due: date, today: date | None = None) -> str:
    """'overdue', 'due_soon' (within 7 days) or 'on_track' — for badges and the dashboard."""
    left = days_left(due, today)
    if left < 0:
        return "overdue"
    return "due_soon" if left <= DUE_SOON_DAYS else "on_track"


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def extended_late_on(received_on: date, recorded_on: date | None) -> date | None:
    """The day an extension was recorded, if that was after the first month had ended.

    Art. 12(3) lets a deadline be extended while it runs; one recorded after it passed
    (whatever "told on" date it gives) cannot undo the miss, so evidence names that day.
    """
    if recorded_on is not None and recorded_on > due_on(received_on):
        return recorded_on
    return None


def _check_extension(
    subject: Subject, months: int, reason: str, informed: date | None, today: date
):
    """Refuse an extension Art. 12(3) does not allow, in plain words."""
    if subject.classification != RowClass.VALID:
        raise ExtensionConflict("Only valid subjects have a deadline; this row was never sent.")
    if subject.state == SubjectState.COMPLETE:
        raise ExtensionConflict(
            "Heap has already completed this deletion: there is nothing to extend."
        )
    if months not in (1, 2):
        raise DeadlineError("An extension is 1 or 2 months.")
    if subject.extension_months + months > MAX_EXTENSION_MONTHS:
        raise ExtensionConflict(
            f"The deadline is already extended by {subject.extension_months} month(s); "
            f"Art. 12(3) allows at most {MAX_EXTENSION_MONTHS} months in total."
        )
    if not reason:
        raise DeadlineError("Give the reason for the extension (Art. 12(3) requires one).")
    if len(reason) > MAX_REASON_LENGTH:
        raise DeadlineError(f"The reason must be at most {MAX_REASON_LENGTH} characters.")
    if informed is None:
        raise DeadlineError("Give the date the person was told about the extension.")
    first_due = due_on(subject.received_on)
    if informed > today:
        raise ExtensionConflict(
            "The date the person was told cannot be in the future: it must be on or before "
            "today, the day the extension is recorded."
        )
    if informed < subject.received_on:
        raise ExtensionConflict(
            f"The person cannot have been told before the request arrived "
            f"({subject.received_on.isoformat()})."
        )
    if informed > first_due:
        raise ExtensionConflict(
            f"The person must be told within the first month, by {first_due.isoformat()}; "
            f"{informed.isoformat()} is too late to extend."
        )


def extend(
    session: Session,
    *,
    actor: str,
    subject_id: int,
    months: int,
    reason: str,
    subject_informed_on: date | None,
    today: date | None = None,
) -> Subject:
    """Extend one subject's deadline by 1 or 2 months (2 at most in total); commits."""
    subject = session.get(Subject, subject_id)
    if subject is None:
        raise SubjectNotFound(f"There is no subject {subject_id}.")
    reason = (reason or "").strip()
    today = today or today_utc()
    _check_extension(subject, months, reason, subject_informed_on, today)
    previous = subject.due_on
    subject.extension_months += months
    subject.due_on = due_on(subject.received_on, subject.extension_months)
    subject.extension_reason = reason
    subject.subject_informed_on = subject_informed_on
    # The day of recording is what a "told on" date cannot prove: an extension recorded after
    # the first month ended leaves that deadline missed (evidence says so). A later extension
    # never hides the day an earlier one came late.
    late_on = extended_late_on(subject.received_on, subject.extension_recorded_on)
    subject.extension_recorded_on = late_on or today
    audit.record(
        session,
        actor=actor,
        action="subject.deadline_extended",
        target_type="subject",
        target_id=subject.id,
        details={
            "batch_id": subject.batch_id,
            "fingerprint": subject.fingerprint,
            "months": months,
            "extension_months": subject.extension_months,
            "due_on_before": previous.isoformat(),
            "due_on": subject.due_on.isoformat(),
            "subject_informed_on": subject_informed_on.isoformat(),
            "recorded_on": today.isoformat(),
            "extended_late_on": _iso(
                extended_late_on(subject.received_on, subject.extension_recorded_on)
            ),
            "reason": reason,
        },
    )
    session.commit()
    return subject


def _open_subjects(query):
    """Restrict a query over Subject to deletions still owed."""
    return (
        query.join(Batch, Batch.id == Subject.batch_id)
        .where(Subject.state.in_([s.value for s in OPEN_SUBJECT_STATES]))
        .where(Subject.classification == RowClass.VALID.value)
        .where(Batch.state.not_in([s.value for s in WITHDRAWN_BATCH_STATES]))
    )


@dataclass
class AtRisk:
    """Subjects whose deadline has passed or falls within the next 7 days."""

    overdue: int
    due_soon: int
    subjects: list[Subject]


def at_risk(session: Session, *, today: date | None = None, limit: int = 20) -> AtRisk:
    """The dashboard's list: overdue and due-within-7-days subjects, earliest first."""
    today = today or today_utc()
    horizon = today + timedelta(days=DUE_SOON_DAYS)
    counts = session.exec(
        _open_subjects(
            select(
                sa.func.count().filter(Subject.due_on < today),
                sa.func.count().filter(Subject.due_on >= today),
            ).select_from(Subject)
        ).where(Subject.due_on <= horizon)
    ).one()
    rows = session.exec(
        _open_subjects(select(Subject))
        .where(Subject.due_on <= horizon)
        .order_by(Subject.due_on, Subject.id)
        .limit(limit)
    ).all()
    return AtRisk(overdue=counts[0], due_soon=counts[1], subjects=list(rows))


def batch_summary(session: Session, batch_id: int, *, today: date | None = None) -> dict:
    """Earliest due date, overdue and due-soon counts of a batch's owed deletions."""
    today = today or today_utc()
    horizon = today + timedelta(days=DUE_SOON_DAYS)
    earliest, latest, overdue, soon = session.exec(
        _open_subjects(
            select(
                sa.func.min(Subject.due_on),
                sa.func.max(Subject.due_on),
                sa.func.count().filter(Subject.due_on < today),
                sa.func.count().filter(Subject.due_on.between(today, horizon)),
            ).select_from(Subject)
        ).where(Subject.batch_id == batch_id)
    ).one()
    return {
        "earliest_due_on": earliest.isoformat() if earliest else None,
        "latest_due_on": latest.isoformat() if latest else None,
        "overdue": overdue,
        "due_within_7_days": soon,
        "days_left": days_left(earliest, today) if earliest else None,
        "urgency": urgency(earliest, today) if earliest else None,
    }
