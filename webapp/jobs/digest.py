"""The daily digest's content: deadlines at risk, approvals waiting, failures — no identifiers.

Subjects appear only as counts and the first characters of their fingerprints; batches as links
to their pages. Every list is capped so a bad day still fits in one readable mail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from webapp.erasure.deadlines import DUE_SOON_DAYS, OPEN_SUBJECT_STATES, WITHDRAWN_BATCH_STATES
from webapp.models import Batch, BatchState, ChunkState, Environment, HeapRequest, RowClass, Subject

LIST_LIMIT = 50
FINGERPRINTS_PER_BATCH = 10
FINGERPRINT_CHARS = 12
APPROVAL_WAIT = timedelta(days=1)
FAILING_BATCH_STATES = (BatchState.FAILED.value, BatchState.WAITING_RETRY.value)
STATE_LABELS = {
    BatchState.FAILED.value: "failed, waiting for an officer to retry it",
    BatchState.WAITING_RETRY.value: "waiting to retry",
}


@dataclass
class Listing:
    """The first LIST_LIMIT items of a list, and how many there are in all."""

    items: list
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.items)


@dataclass
class DueEnvironment:
    """Owed deletions of one Heap environment that are overdue or due within 7 days."""

    name: str
    overdue: int
    due_soon: int


@dataclass
class DueBatch:
    """A batch with owed deletions at risk, and the first of their fingerprints."""

    batch_id: int
    environment: str
    url: str
    earliest_due_on: date
    overdue: int
    due_soon: int
    fingerprints: list[str] = field(default_factory=list)
    more_subjects: int = 0


@dataclass
class BatchLine:
    """A batch waiting for a person: approval, or a retry after Heap refused or failed."""

    batch_id: int
    environment: str
    url: str
    state: str
    at: datetime | None  # uploaded (awaiting approval) or next attempt (waiting to retry)

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, self.state.replace("_", " "))


@dataclass
class RequestLine:
    """A Heap deletion request refused for good, or open long past its expected time."""

    chunk_id: int
    batch_id: int
    environment: str
    url: str
    chunk_index: int
    state: str
    stale: bool
    heap_status: str | None
    deletion_request_id: str | None
    accepted_at: datetime | None


@dataclass
class Digest:
    """Everything the daily digest reports for one day."""

    day: date
    overdue: int
    due_soon: int
    environments: list[DueEnvironment]
    due_batches: Listing
    awaiting_approval: Listing
    failing_batches: Listing
    problem_requests: Listing

    @property
    def empty(self) -> bool:
        return not (
            self.overdue
            or self.due_soon
            or self.awaiting_approval.total
            or self.failing_batches.total
            or self.problem_requests.total
        )

    def summary(self) -> dict:
        """The counts, for the mail's subject line and the audit entry."""
        return {
            "overdue": self.overdue,
            "due_soon": self.due_soon,
            "awaiting_approval": self.awaiting_approval.total,
            "failing_batches": self.failing_batches.total,
            "problem_requests": self.problem_requests.total,
        }


def batch_url(public_url: str, batch_id: int) -> str:
    """The batch's page on the desk, as people open it (DESK_PUBLIC_URL)."""
    return f"{public_url}/batches/{batch_id}"


def _owed(today: date):
    """Subjects still owed a deletion whose deadline falls within DUE_SOON_DAYS (or passed)."""
    return sa.and_(
        Subject.classification == RowClass.VALID.value,
        Subject.state.in_([s.value for s in OPEN_SUBJECT_STATES]),
        Batch.state.not_in([s.value for s in WITHDRAWN_BATCH_STATES]),
        Subject.due_on <= today + timedelta(days=DUE_SOON_DAYS),
    )


def _deadline_counts(today: date):
    return (
        sa.func.count().filter(Subject.due_on < today),
        sa.func.count().filter(Subject.due_on >= today),
    )


def _due_environments(session: Session, today: date) -> list[DueEnvironment]:
    rows = session.exec(
        select(Environment.name, *_deadline_counts(today))
        .select_from(Subject)
        .join(Batch, Batch.id == Subject.batch_id)
        .join(Environment, Environment.id == Subject.environment_id)
        .where(_owed(today))
        .group_by(Environment.name)
        .order_by(Environment.name)
    ).all()
    return [DueEnvironment(name, overdue, soon) for name, overdue, soon in rows]


def _due_batches(session: Session, today: date, public_url: str) -> Listing:
    base = (
        select(Subject.batch_id)
        .select_from(Subject)
        .join(Batch, Batch.id == Subject.batch_id)
        .where(_owed(today))
        .group_by(Subject.batch_id)
    )
    total = session.exec(select(sa.func.count()).select_from(base.subquery())).one()
    earliest = sa.func.min(Subject.due_on)
    rows = session.exec(
        select(Subject.batch_id, Environment.name, earliest, *_deadline_counts(today))
        .select_from(Subject)
        .join(Batch, Batch.id == Subject.batch_id)
        .join(Environment, Environment.id == Subject.environment_id)
        .where(_owed(today))
        .group_by(Subject.batch_id, Environment.name)
        .order_by(earliest, Subject.batch_id)
        .limit(LIST_LIMIT)
    ).all()
    items = []
    for batch_id, environment, first_due, overdue, soon in rows:
        fingerprints = session.exec(
            select(Subject.fingerprint)
            .join(Batch, Batch.id == Subject.batch_id)
            .where(Subject.batch_id == batch_id, _owed(today))
            .order_by(Subject.due_on, Subject.id)
            .limit(FINGERPRINTS_PER_BATCH)
        ).all()
        shown = [(fp or "")[:FINGERPRINT_CHARS] for fp in fingerprints]
        items.append(
            DueBatch(
                batch_id=batch_id,
                environment=environment,
                url=batch_url(public_url, batch_id),
                earliest_due_on=first_due,
                overdue=overdue,
                due_soon=soon,
                fingerprints=shown,
                more_subjects=overdue + soon - len(shown),
            )
        )
    return Listing(items, total)


def _batches(session: Session, where, order, public_url: str, at_column) -> Listing:
    total = session.exec(select(sa.func.count()).select_from(Batch).where(where)).one()
    rows = session.exec(
        select(Batch.id, Environment.name, Batch.state, at_column)
        .join(Environment, Environment.id == Batch.environment_id)
        .where(where)
        .order_by(*order)
        .limit(LIST_LIMIT)
    ).all()
    items = [
        BatchLine(batch_id, environment, batch_url(public_url, batch_id), state, at)
        for batch_id, environment, state, at in rows
    ]
    return Listing(items, total)


def _problem_requests(session: Session, public_url: str) -> Listing:
    where = sa.or_(
        HeapRequest.state == ChunkState.FAILED.value,
        sa.and_(HeapRequest.stale.is_(True), HeapRequest.state != ChunkState.COMPLETE.value),
    )
    total = session.exec(select(sa.func.count()).select_from(HeapRequest).where(where)).one()
    rows = session.exec(
        select(HeapRequest, Environment.name)
        .join(Batch, Batch.id == HeapRequest.batch_id)
        .join(Environment, Environment.id == Batch.environment_id)
        .where(where)
        .order_by(HeapRequest.batch_id, HeapRequest.chunk_index)
        .limit(LIST_LIMIT)
    ).all()
    items = [
        RequestLine(
            chunk_id=chunk.id,
            batch_id=chunk.batch_id,
            environment=environment,
            url=batch_url(public_url, chunk.batch_id),
            chunk_index=chunk.chunk_index,
            state=chunk.state,
            stale=chunk.stale,
            heap_status=chunk.heap_status,
            deletion_request_id=chunk.deletion_request_id,
            accepted_at=chunk.accepted_at,
        )
        for chunk, environment in rows
    ]
    return Listing(items, total)


def build_digest(session: Session, *, now: datetime, public_url: str) -> Digest:
    """What needs attention on `now`'s day (UTC), in a handful of indexed queries."""
    today = now.date()
    overdue, due_soon = session.exec(
        select(*_deadline_counts(today))
        .select_from(Subject)
        .join(Batch, Batch.id == Subject.batch_id)
        .where(_owed(today))
    ).one()
    awaiting = sa.and_(
        Batch.state == BatchState.AWAITING_APPROVAL.value, Batch.created_at < now - APPROVAL_WAIT
    )
    return Digest(
        day=today,
        overdue=overdue,
        due_soon=due_soon,
        environments=_due_environments(session, today),
        due_batches=_due_batches(session, today, public_url),
        awaiting_approval=_batches(
            session, awaiting, (Batch.created_at, Batch.id), public_url, Batch.created_at
        ),
        failing_batches=_batches(
            session,
            Batch.state.in_(FAILING_BATCH_STATES),
            (Batch.id,),
            public_url,
            Batch.next_attempt_at,
        ),
        problem_requests=_problem_requests(session, public_url),
    )
