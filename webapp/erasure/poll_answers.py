"""What the polling job records of Heap's answers: poll times, statuses verbatim, failed polls.

Statuses are audited as Heap spells them (the client accepts only short plain words); a failed
poll's text never enters the audit trail.

The transitions the answers imply (complete, stale) are `lifecycle`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from webapp.erasure.lifecycle import (
    COMPLETE,
    SYSTEM,
    audit_status_change,
    complete_chunk,
    flag_stale,
)
from webapp.erasure.retry_policy import format_retry_time
from webapp.heap import HeapNotFound, error_class
from webapp.models import ChunkState, HeapDeletionId, HeapRequest
from webapp.trail import audit

NOT_FOUND_PREFIX = "Heap does not know deletion request"
# However often polls fail, a request is asked about again at least once a day.
MAX_POLL_BACKOFF_SECONDS = 86_400


@dataclass(frozen=True)
class Answer:
    """Heap's answer about one deletion_request_id: a status, or the error instead."""

    row_id: int
    deletion_request_id: str
    status: str | None
    error: Exception | None = None


def record_quiet(
    session: Session, *, chunk_ids: list[int], row_ids: list[int], now: datetime, interval: int
) -> None:
    """Polls that changed nothing: only the poll times move, in two statements."""
    if not chunk_ids:
        return
    session.exec(
        sa.update(HeapRequest)
        .where(HeapRequest.id.in_(chunk_ids), HeapRequest.state == ChunkState.ACCEPTED.value)
        .values(last_polled_at=now, next_poll_at=now + timedelta(seconds=interval))
    )
    session.exec(
        sa.update(HeapDeletionId).where(HeapDeletionId.id.in_(row_ids)).values(last_polled_at=now)
    )


def record_answers(
    session: Session,
    *,
    chunk_id: int,
    answers: list[Answer],
    now: datetime,
    interval: int,
    stale_after: timedelta,
) -> bool:
    """Store one chunk's poll answers; True if it completed (the caller settles its batch).

    The caller has locked the chunk's batch and commits.
    """
    chunk = session.get(HeapRequest, chunk_id, populate_existing=True)
    if chunk is None or chunk.state != ChunkState.ACCEPTED:
        return False  # recorded meanwhile by another run
    rows = {
        row.id: row
        for row in session.exec(
            select(HeapDeletionId).where(HeapDeletionId.heap_request_id == chunk_id)
        ).all()
    }
    statuses: dict[str, str] = {}
    for answer in answers:
        row = rows.get(answer.row_id)
        if row is None or answer.status is None:
            continue
        statuses[row.deletion_request_id] = _store_status(session, chunk, row, answer.status, now)
    chunk.last_polled_at = now
    if statuses:
        chunk.heap_status = statuses.get(chunk.deletion_request_id) or next(iter(statuses.values()))
        chunk.poll_failures = 0
        chunk.last_error = None
        chunk.next_poll_at = now + timedelta(seconds=interval)
    else:
        errors = [answer for answer in answers if answer.error is not None]
        if errors:
            _poll_failed(session, chunk, errors[0], now=now, interval=interval)
    session.add(chunk)
    if COMPLETE in statuses.values():
        complete_chunk(session, chunk, now=now)
        return True
    flag_stale(session, chunk, now=now, stale_after=stale_after)
    return False


def _store_status(
    session: Session, chunk: HeapRequest, row: HeapDeletionId, status: str, now: datetime
) -> str:
    """Keep Heap's status verbatim; audit it only when it differs from the last one."""
    status = status[:64]
    row.last_polled_at = now
    if status != row.status:
        audit_status_change(
            session, chunk.id, chunk.batch_id, row.deletion_request_id, row.status, status
        )
        row.status = status
    if status == COMPLETE and row.completed_at is None:
        row.completed_at = now
    session.add(row)
    return status


def _poll_failed(
    session: Session, chunk: HeapRequest, answer: Answer, *, now: datetime, interval: int
) -> None:
    """Back off exponentially; a 404 is audited once, when it first appears."""
    chunk.poll_failures += 1
    delay = min(
        interval * 2 ** min(chunk.poll_failures, 12), max(interval, MAX_POLL_BACKOFF_SECONDS)
    )
    chunk.next_poll_at = now + timedelta(seconds=delay)
    when = format_retry_time(chunk.next_poll_at, now)
    error = answer.error
    if isinstance(error, HeapNotFound):
        first = not (chunk.last_error or "").startswith(NOT_FOUND_PREFIX)
        chunk.last_error = (
            f"{NOT_FOUND_PREFIX} {answer.deletion_request_id} (404); asking again at {when}"
        )
        if first:
            audit.record(
                session,
                actor=SYSTEM,
                action="heap_request.poll_not_found",
                target_type="heap_request",
                target_id=chunk.id,
                # Heap's status and the error class, never its text (it stays on the chunk).
                details={
                    "batch_id": chunk.batch_id,
                    "deletion_request_id": answer.deletion_request_id,
                    "http_status": error.status,
                    "error_class": error_class(error),
                },
            )
    else:
        # A status call carries no personal identifier: Heap's text (or the desk's account of
        # a failed connection) is kept as it is, on the chunk only, until the next answer.
        message = getattr(error, "message", str(error))
        chunk.last_error = f"Asking Heap for the status failed ({message}); asking again at {when}"
