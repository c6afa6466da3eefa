"""Read-only views of batches for the pages and the API: lists, detail, rows (paginated)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from webapp.crypto import DecryptionError, decrypt, subject_fingerprint
from webapp.erasure import deadlines
from webapp.erasure.batches import BatchNotFound
from webapp.heap.validation import MAX_USER_ID
from webapp.models import (
    Batch,
    BatchState,
    Environment,
    HeapDeletionId,
    HeapRequest,
    RowClass,
    Subject,
    SubjectState,
    User,
)

SUBJECTS_PER_PAGE = 50
PROBLEMS_PER_PAGE = 20
BATCHES_PER_PAGE = 25
PROBLEM_CLASSES = [
    RowClass.MALFORMED.value,
    RowClass.DUPLICATE.value,
    RowClass.ALREADY_REQUESTED.value,
    RowClass.EXCLUDED.value,
]
# While these run, the batch page refreshes itself to show Heap's progress.
ACTIVE_STATES = {
    BatchState.APPROVED,
    BatchState.SUBMITTING,
    BatchState.WAITING_RETRY,
    BatchState.POLLING,
}


@dataclass
class Page:
    """One page of a longer list."""

    items: list
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def _page(session: Session, query, page: int, per_page: int, *, count=None) -> Page:
    """One page of `query`; `count` (a SELECT count(*)) when a cheaper one than counting the
    whole query exists."""
    if count is None:
        count = select(sa.func.count()).select_from(query.order_by(None).subquery())
    total = session.exec(count).one()
    page = min(max(1, page), max(1, math.ceil(total / per_page)))
    items = session.exec(query.limit(per_page).offset((page - 1) * per_page)).all()
    return Page(items=list(items), page=page, per_page=per_page, total=total)


@dataclass
class BatchRow:
    """A batch as lists show it."""

    batch: Batch
    environment: str
    uploader: str

    @property
    def complete(self) -> int:
        # Kept up to date by the polling job in the transaction that completes the subjects.
        return self.batch.completed_count

    @property
    def total(self) -> int:
        return self.batch.valid_count


def _batches_query():
    return (
        select(Batch, Environment.name, User.email)
        .join(Environment, Environment.id == Batch.environment_id)
        .join(User, User.id == Batch.uploaded_by)
    )


@dataclass(frozen=True)
class BatchFilters:
    """What the batch list is narrowed to (each one optional, all of them combined)."""

    state: str | None = None
    environment_id: int | None = None
    reference: str | None = None  # contains, any letter case
    filename: str | None = None  # contains, any letter case
    uploaded_by: int | None = None
    uploaded_from: date | None = None  # UTC days, both inclusive
    uploaded_to: date | None = None


def _contains(column, text: str, *, sqlite: bool):
    """`column` contains `text`, any letter case; LIKE's own wildcards in it are plain text.

    SQLite's LIKE already ignores ASCII letter case (and its lower() knows no other), so it
    gets LIKE: twice as fast over 100,000 batches as SQLAlchemy's ilike (lower() on both sides).
    """
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    if sqlite:
        return column.like(pattern, escape="\\")
    return column.ilike(pattern, escape="\\")


def _filtered(query, filters: BatchFilters, *, sqlite: bool):
    # References and file names are matched by a scan of the batches (LIKE '%…%' uses no
    # index); a batch is one row per upload, and 100,000 of them are still listed within the
    # pages' budget (README, Benchmarks), so no index or migration is added for it.
    if filters.state:
        query = query.where(Batch.state == filters.state)
    if filters.environment_id:
        query = query.where(Batch.environment_id == filters.environment_id)
    if filters.reference:
        query = query.where(_contains(Batch.reference, filters.reference, sqlite=sqlite))
    if filters.filename:
        query = query.where(_contains(Batch.filename, filters.filename, sqlite=sqlite))
    if filters.uploaded_by:
        query = query.where(Batch.uploaded_by == filters.uploaded_by)
    if filters.uploaded_from:
        query = query.where(Batch.created_at >= _midnight(filters.uploaded_from))
    if filters.uploaded_to:
        query = query.where(Batch.created_at < _midnight(filters.uploaded_to + timedelta(days=1)))
    return query


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def list_batches(
    session: Session,
    *,
    state: str | None = None,
    environment_id: int | None = None,
    filters: BatchFilters | None = None,
    page: int = 1,
    per_page: int = BATCHES_PER_PAGE,
) -> Page:
    """Batches newest first, optionally of one state and environment, or by `filters`."""
    filters = filters or BatchFilters(state=state, environment_id=environment_id)
    sqlite = session.get_bind().dialect.name == "sqlite"
    query = _filtered(_batches_query(), filters, sqlite=sqlite)
    # Newest first by id, which grows with every upload (created_at is set in the same
    # insert): the primary key walks backwards and stops at a page, where ordering by
    # created_at sorted every batch first (0.8 s at 100,000 batches). Counted on batches alone:
    # the joins never drop a row (foreign keys).
    count = _filtered(select(sa.func.count()).select_from(Batch), filters, sqlite=sqlite)
    result = _page(session, query.order_by(Batch.id.desc()), page, per_page, count=count)
    result.items = [
        BatchRow(batch=b, environment=env, uploader=email) for b, env, email in result.items
    ]
    return result


def uploaders(session: Session) -> list[tuple[int, str]]:
    """(id, e-mail) of every account that uploaded a batch, by e-mail."""
    # One pass over the batches (25 ms at 100,000); EXISTS per account would pass over all of
    # them once for every account that never uploaded (auditors, admins).
    uploaded = select(Batch.uploaded_by).distinct()
    return list(
        session.exec(select(User.id, User.email).where(User.id.in_(uploaded)).order_by(User.email))
    )


@dataclass
class RequestView:
    """A Heap deletion request (one chunk) with every deletion_request_id it ever got."""

    request: HeapRequest
    deletion_ids: list[HeapDeletionId]


@dataclass
class BatchDetail:
    """Everything the batch page and GET /batches/{id} show."""

    batch: Batch
    environment: Environment
    people: dict[str, str | None]
    complete: int
    subject_states: dict[str, int]
    requests: list[RequestView]
    deadlines: dict

    @property
    def refreshing(self) -> bool:
        return self.batch.state in ACTIVE_STATES


def _requests(session: Session, batch_id: int) -> list[RequestView]:
    return [
        RequestView(request=chunk, deletion_ids=ids)
        for chunk, ids in requests_with_ids(session, batch_id)
    ]


def batch_detail(session: Session, batch_id: int) -> BatchDetail:
    """The batch with its people, progress, Heap requests and deadlines."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise BatchNotFound(f"There is no batch {batch_id}.")
    user_ids = {batch.uploaded_by, batch.approved_by, batch.rejected_by, batch.cancelled_by} - {
        None
    }
    emails = dict(session.exec(select(User.id, User.email).where(User.id.in_(user_ids))).all())
    states = dict(
        session.exec(
            select(Subject.state, sa.func.count())
            .where(Subject.batch_id == batch_id)
            .group_by(Subject.state)
        ).all()
    )
    return BatchDetail(
        batch=batch,
        environment=session.get(Environment, batch.environment_id),
        people={
            "uploaded_by": emails.get(batch.uploaded_by),
            "approved_by": emails.get(batch.approved_by),
            "rejected_by": emails.get(batch.rejected_by),
            "cancelled_by": emails.get(batch.cancelled_by),
        },
        complete=states.get(SubjectState.COMPLETE.value, 0),
        subject_states=states,
        requests=_requests(session, batch_id),
        deadlines=deadlines.batch_summary(session, batch_id),
    )


def identifier(subject: Subject) -> str | None:
    """The subject's identifier in clear (None once purged or unreadable)."""
    if not subject.identifier_encrypted:
        return None
    try:
        return decrypt(subject.identifier_encrypted)
    except DecryptionError:
        return None


@dataclass
class SubjectView:
    subject: Subject
    identifier: str | None


def _search(query, text: str):
    """Exact identifier (by fingerprint: identity, or user_id for digits) or row number."""
    conditions = [Subject.fingerprint == subject_fingerprint("identity", text)]
    if text.isascii() and text.isdigit() and int(text) <= MAX_USER_ID:
        conditions.append(Subject.fingerprint == subject_fingerprint("user_id", text))
        conditions.append(Subject.row_number == int(text))
    return query.where(sa.or_(*conditions))


def subjects_page(
    session: Session,
    batch_id: int,
    *,
    page: int = 1,
    search: str | None = None,
    problems_only=False,
) -> Page:
    """A batch's rows in file order, 50 a page; searchable by identifier or row number."""
    query = select(Subject).where(Subject.batch_id == batch_id)
    if problems_only:
        query = query.where(Subject.classification.in_(PROBLEM_CLASSES))
    search = (search or "").strip()
    if search:
        query = _search(query, search)
    per_page = PROBLEMS_PER_PAGE if problems_only else SUBJECTS_PER_PAGE
    result = _page(session, query.order_by(Subject.row_number), page, per_page)
    result.items = [SubjectView(subject=s, identifier=identifier(s)) for s in result.items]
    return result


def deletion_ids_by_request(
    session: Session, request_ids: list[int]
) -> dict[int, list[HeapDeletionId]]:
    """Every deletion id Heap returned for these requests, oldest attempt first."""
    found: dict[int, list[HeapDeletionId]] = {request_id: [] for request_id in request_ids}
    if request_ids:
        query = (
            select(HeapDeletionId)
            .where(HeapDeletionId.heap_request_id.in_(request_ids))
            .order_by(HeapDeletionId.attempt, HeapDeletionId.id)
        )
        for row in session.exec(query):
            found[row.heap_request_id].append(row)
    return found


def requests_with_ids(
    session: Session, batch_id: int
) -> list[tuple[HeapRequest, list[HeapDeletionId]]]:
    """A batch's Heap requests in chunk order, each with all its deletion ids."""
    chunks = session.exec(
        select(HeapRequest)
        .where(HeapRequest.batch_id == batch_id)
        .order_by(HeapRequest.chunk_index)
    ).all()
    ids = deletion_ids_by_request(session, [chunk.id for chunk in chunks])
    return [(chunk, ids[chunk.id]) for chunk in chunks]
