"""What the submission job records after each deletion POST: accepted, unknown, retry, failed.

Each function runs inside the caller's write transaction, with the chunk's batch already
locked (`deletion_requests.lock_batch`), changes the chunk only if it is still the attempt
the caller made, writes the audit entries, and leaves the commit to the caller.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from webapp.erasure.lifecycle import (
    SUBMITTABLE,
    SYSTEM,
    format_retry_time,
    lock_batch,
    redact_subjects,
    settle_batch,
)
from webapp.erasure.retry_policy import retry_reason
from webapp.heap import DeletionAccepted
from webapp.models import Batch, ChunkState, HeapDeletionId, HeapRequest, Subject, SubjectState
from webapp.trail import audit

# Added to the client's timeouts before a `sending` chunk counts as interrupted.
SENDING_MARGIN_SECONDS = 30.0
# Chunk states an outcome may still change: `sending` normally; `queued`/`waiting_retry` when
# another scheduler recovered the chunk meanwhile (its id must still be recorded).
OPEN_STATES = (ChunkState.SENDING.value, ChunkState.QUEUED.value, ChunkState.WAITING_RETRY.value)


def _chunk_of_attempt(chunk_id: int, attempt: int):
    """WHERE clause: the chunk, still `sending` for exactly this attempt."""
    return sa.and_(
        HeapRequest.id == chunk_id,
        HeapRequest.state == ChunkState.SENDING.value,
        HeapRequest.attempts == attempt,
    )


def _audit_chunk(session: Session, action: str, chunk_id: int, details: dict[str, Any]) -> None:
    audit.record(
        session,
        actor=SYSTEM,
        action=action,
        target_type="heap_request",
        target_id=chunk_id,
        details=details,
    )


def record_accepted(
    session: Session,
    *,
    batch: Batch,
    chunk_id: int,
    attempt: int,
    now: datetime,
    result: DeletionAccepted,
) -> str:
    """Heap answered 201: keep its id (always), mark the chunk and its subjects submitted."""
    chunk = session.get(HeapRequest, chunk_id, populate_existing=True)
    earlier = chunk.deletion_request_id
    session.add(
        HeapDeletionId(
            heap_request_id=chunk_id,
            deletion_request_id=result.deletion_request_id,
            location=(result.location or "")[:500] or None,
            attempt=attempt,
            status=result.status[:64],
            accepted_at=now,
        )
    )
    took = session.exec(
        sa.update(HeapRequest)
        .where(HeapRequest.id == chunk_id, HeapRequest.state.in_(OPEN_STATES))
        .values(
            state=ChunkState.ACCEPTED.value,
            deletion_request_id=result.deletion_request_id,
            heap_status=result.status[:64],
            accepted_at=sa.func.coalesce(HeapRequest.accepted_at, now),
            next_poll_at=now,
            next_attempt_at=None,
            last_error=None,
            poll_failures=0,
        )
    ).rowcount
    submitted = session.exec(
        sa.update(Subject)
        .where(Subject.heap_request_id == chunk_id, Subject.state == SubjectState.PENDING.value)
        .values(state=SubjectState.SUBMITTED.value, submitted_at=now)
    ).rowcount
    details = {
        "batch_id": batch.id,
        "chunk_index": chunk.chunk_index,
        "attempt": attempt,
        "deletion_request_id": result.deletion_request_id,
        "status": result.status,
        "subjects_submitted": submitted,
    }
    if not took:
        # Another scheduler already recorded an id for this chunk: both are kept.
        details["kept_alongside"] = earlier
    _audit_chunk(session, "heap_request.accepted", chunk_id, details)
    settle_batch(session, batch, now=now)
    return ChunkState.ACCEPTED.value


def record_unknown(
    session: Session,
    *,
    batch: Batch,
    chunk_id: int,
    attempt: int,
    now: datetime,
    reason: str,
    retry_at: datetime | None,
) -> str:
    """No answer (timeout after sending, crash): queue the chunk to be sent again."""
    when = f" at {format_retry_time(retry_at, now)}" if retry_at else ""
    message = (
        f"Heap's answer never came ({reason}); the request will be sent again{when}. "
        "Deleting twice is harmless and every id Heap returns is kept."
    )
    session.exec(
        sa.update(HeapRequest)
        .where(_chunk_of_attempt(chunk_id, attempt))
        .values(state=ChunkState.QUEUED.value, next_attempt_at=retry_at, last_error=message)
    )
    _audit_chunk(
        session,
        "heap_request.outcome_unknown",
        chunk_id,
        {
            "batch_id": batch.id,
            "attempt": attempt,
            "reason": reason,
            "resubmit_at": retry_at.isoformat() if retry_at else "next run",
        },
    )
    settle_batch(session, batch, now=now)
    return ChunkState.QUEUED.value


def hold_environment(
    session: Session, *, environment_id: int, except_batch: int, retry_at: datetime
) -> None:
    """Heap's 429/5xx concerns the whole environment: its other batches hold back too.

    Run in a transaction of its own, after the chunk's outcome is committed: updating other
    batches while holding this batch's row lock would take row locks out of id order and could
    deadlock with the poller on PostgreSQL.
    """
    session.exec(
        sa.update(Batch)
        .where(
            Batch.environment_id == environment_id,
            Batch.id != except_batch,
            Batch.state.in_([state.value for state in SUBMITTABLE]),
            sa.or_(Batch.next_attempt_at.is_(None), Batch.next_attempt_at < retry_at),
        )
        .values(next_attempt_at=retry_at)
    )
    session.commit()


def record_retry(
    session: Session,
    *,
    batch: Batch,
    chunk_id: int,
    attempt: int,
    now: datetime,
    error: Exception,
    users: list[dict[str, Any]],
    retry_at: datetime,
) -> str:
    """429, 5xx, unreachable, refused key: the chunk and its environment wait until retry_at."""
    reason = redact_subjects(retry_reason(error, retry_at=retry_at, now=now), users)
    session.exec(
        sa.update(HeapRequest)
        .where(_chunk_of_attempt(chunk_id, attempt))
        .values(state=ChunkState.WAITING_RETRY.value, next_attempt_at=retry_at, last_error=reason)
    )
    _audit_chunk(
        session,
        "heap_request.retry_scheduled",
        chunk_id,
        {
            "batch_id": batch.id,
            "attempt": attempt,
            "http_status": getattr(error, "status", None),
            "reason": reason,
            "retry_at": retry_at.isoformat(),
        },
    )
    settle_batch(session, batch, now=now, reason=reason)
    return ChunkState.WAITING_RETRY.value


def record_failed(
    session: Session,
    *,
    batch: Batch,
    chunk_id: int,
    attempt: int,
    now: datetime,
    error: Exception,
    users: list[dict[str, Any]],
) -> str:
    """Heap refused the request for good (400): the chunk, its subjects and the batch fail."""
    message = redact_subjects(getattr(error, "message", str(error)), users)
    chunk = session.get(HeapRequest, chunk_id, populate_existing=True)
    session.exec(
        sa.update(HeapRequest)
        .where(_chunk_of_attempt(chunk_id, attempt))
        .values(state=ChunkState.FAILED.value, last_error=message, next_attempt_at=None)
    )
    session.exec(
        sa.update(Subject)
        .where(Subject.heap_request_id == chunk_id, Subject.state == SubjectState.PENDING.value)
        .values(state=SubjectState.FAILED.value)
    )
    _audit_chunk(
        session,
        "heap_request.failed",
        chunk_id,
        {
            "batch_id": batch.id,
            "attempt": attempt,
            "http_status": getattr(error, "status", None),
            "message": message,
        },
    )
    total = session.exec(
        select(sa.func.count()).select_from(HeapRequest).where(HeapRequest.batch_id == batch.id)
    ).one()
    reason = (
        f"Heap refused request {chunk.chunk_index} of {total} for good: {message}. "
        "Correct the cause, then retry the batch."
    )
    settle_batch(session, batch, now=now, reason=reason)
    return ChunkState.FAILED.value


def requeue_batch(session: Session, batch: Batch) -> int:
    """Put a batch's failed and waiting chunks (and their subjects) back in the queue."""
    requeued = session.exec(
        sa.update(HeapRequest)
        .where(
            HeapRequest.batch_id == batch.id,
            HeapRequest.state.in_([ChunkState.FAILED.value, ChunkState.WAITING_RETRY.value]),
        )
        .values(state=ChunkState.QUEUED.value, next_attempt_at=None, last_error=None)
    ).rowcount
    session.exec(
        sa.update(Subject)
        .where(Subject.batch_id == batch.id, Subject.state == SubjectState.FAILED.value)
        .values(state=SubjectState.PENDING.value)
    )
    return requeued


def recover_interrupted(session: Session, *, now: datetime, grace: timedelta) -> int:
    """Queue again every chunk left `sending` by a crash: its outcome is unknown."""
    stuck = session.exec(
        select(HeapRequest).where(
            HeapRequest.state == ChunkState.SENDING.value, HeapRequest.sent_at <= now - grace
        )
    ).all()
    for chunk in stuck:
        batch = lock_batch(session, chunk.batch_id)
        record_unknown(
            session,
            batch=batch,
            chunk_id=chunk.id,
            attempt=chunk.attempts,
            reason="the desk stopped after the request may have been sent",
            now=now,
            retry_at=None,
        )
    session.commit()
    return len(stuck)
