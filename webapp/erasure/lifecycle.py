"""The life of a Heap deletion request (a chunk) and the batch state it settles: one home.

Every transition is a function here that changes the rows *and* writes its audit entry in the
caller's transaction (STYLE.md rule 4); the submission and polling jobs only decide which one
applies and own the commits around the HTTP call (DESIGN.md, "No deletion is lost").

    chunk (HeapRequest)                          function               audit action
    ─────────────────────────────────────────────────────────────────────────────────────────
    (new) → queued                               plan_chunks            heap_request.planned
    queued | waiting_retry → sending             claim_for_sending      heap_request.sending
    sending → accepted                           record_accepted        heap_request.accepted
    sending → queued (outcome unknown)           record_unknown         heap_request.outcome_unknown
    sending, left by a crash → queued            recover_interrupted    heap_request.outcome_unknown
    sending → waiting_retry (429, 5xx, key)      record_retry           heap_request.retry_scheduled
    sending → failed (400: refused for good)     record_failed          heap_request.failed
    failed | waiting_retry → queued (officer)    requeue_for_retry      batch.retry_requested
    accepted → complete (Heap says so)           record_completed,      heap_request.status_changed
                                                 complete_chunk
    accepted, open too long (flag only)          flag_stale             heap_request.stale

    batch: approved → submitting (start_batch: batch.submission_started; an unplannable batch
    fails: batch.failed); approved → awaiting_approval when the set to send is no longer the
    approved manifest, e.g. after a revival (start_batch: batch.returned_for_approval); then
    settle_batch derives submitting | waiting_retry | polling | complete | failed from its
    chunks and audits each change (BATCH_ACTIONS).

Lock order, to keep PostgreSQL free of deadlocks: every transaction that may change a batch's
state locks the batch row first (`lock_batch`), then its chunks, then appends to the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from webapp.crypto import DecryptionError
from webapp.erasure import manifest
from webapp.erasure.payloads import deletion_user, payload_sha256, redact_subjects
from webapp.erasure.retry_policy import format_retry_time, retry_reason
from webapp.heap import DeletionAccepted, error_class
from webapp.heap.validation import validate_deletion_users
from webapp.lease import held_by
from webapp.models import (
    Batch,
    BatchState,
    ChunkState,
    HeapDeletionId,
    HeapRequest,
    RowClass,
    Subject,
    SubjectState,
)
from webapp.notifications import events as notifications
from webapp.trail import audit

SYSTEM = audit.SYSTEM_ACTOR
COMPLETE = "complete"  # Heap's spelling

# States in which the submission job works on a batch.
SUBMITTABLE = (BatchState.APPROVED, BatchState.SUBMITTING, BatchState.WAITING_RETRY)
# What each batch state change is called in the audit trail.
BATCH_ACTIONS = {
    BatchState.SUBMITTING: "batch.submitting",
    BatchState.WAITING_RETRY: "batch.waiting_retry",
    BatchState.POLLING: "batch.submitted",
    BatchState.COMPLETE: "batch.completed",
    BatchState.FAILED: "batch.failed",
}
# Chunk states an outcome may still change: `sending` normally; `queued`/`waiting_retry` when
# another scheduler recovered the chunk meanwhile (its id must still be recorded).
OPEN_STATES = (ChunkState.SENDING.value, ChunkState.QUEUED.value, ChunkState.WAITING_RETRY.value)


def lock_batch(session: Session, batch_id: int) -> Batch | None:
    """The batch, freshly read and locked for this transaction (FOR UPDATE on PostgreSQL)."""
    return session.exec(
        select(Batch)
        .where(Batch.id == batch_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


# ── planned ─────────────────────────────────────────────────────────────────────────────


def plan_chunks(session: Session, batch: Batch, *, size: int) -> list[HeapRequest]:
    """Split the batch's pending valid subjects into queued chunks; audit each plan."""
    rows = session.exec(
        select(Subject.id, Subject.kind, Subject.identifier_encrypted)
        .where(
            Subject.batch_id == batch.id,
            Subject.classification == RowClass.VALID.value,
            Subject.state == SubjectState.PENDING.value,
            Subject.heap_request_id.is_(None),
        )
        .order_by(Subject.id)
    ).all()
    chunks = []
    for index, start in enumerate(range(0, len(rows), size), 1):
        part = rows[start : start + size]
        users = validate_deletion_users([deletion_user(kind, token) for _, kind, token in part])
        chunk = HeapRequest(
            batch_id=batch.id,
            chunk_index=index,
            subject_count=len(part),
            payload_sha256=payload_sha256(users),
            state=ChunkState.QUEUED.value,
        )
        session.add(chunk)
        session.flush()
        # The part is a contiguous run of the ordered eligible subjects: a range names it
        # exactly, without a 10,000-element IN list.
        session.exec(
            sa.update(Subject)
            .where(
                Subject.batch_id == batch.id,
                Subject.id.between(part[0][0], part[-1][0]),
                Subject.classification == RowClass.VALID.value,
                Subject.state == SubjectState.PENDING.value,
                Subject.heap_request_id.is_(None),
            )
            .values(heap_request_id=chunk.id)
        )
        audit.record(
            session,
            actor=SYSTEM,
            action="heap_request.planned",
            target_type="heap_request",
            target_id=chunk.id,
            details={
                "batch_id": batch.id,
                "chunk_index": index,
                "subject_count": len(part),
                "payload_sha256": chunk.payload_sha256,
            },
        )
        chunks.append(chunk)
    return chunks


# Batches whose valid subjects are, or will be, sent to Heap.
COMMITTED_STATES = (
    BatchState.APPROVED,
    BatchState.SUBMITTING,
    BatchState.WAITING_RETRY,
    BatchState.POLLING,
    BatchState.COMPLETE,
    BatchState.FAILED,
)
# Batches that still hold their valid subjects: committed, or awaiting their own approval.
COVERING_STATES = (BatchState.AWAITING_APPROVAL, *COMMITTED_STATES)


def revive_uncovered(session: Session, batch: Batch) -> int:
    """Take back "already requested" subjects that no other batch holds any more.

    At upload a subject also held by an earlier batch is skipped. If that batch was then
    rejected or cancelled (or the subject failed there), skipping would lose the deletion: at
    submission such subjects go back to `valid`, which changes the manifest, so the caller
    returns the batch for approval. A subject whose earlier batch still awaits its own approval
    stays skipped: that batch's approver decides about it (issue 12, finding 1).
    """
    rows = session.exec(
        select(Subject.id, Subject.fingerprint).where(
            Subject.batch_id == batch.id,
            Subject.classification == RowClass.ALREADY_REQUESTED.value,
        )
    ).all()
    if not rows:
        return 0
    fingerprints = sorted({fingerprint for _, fingerprint in rows})
    covered: set[str] = set()
    for start in range(0, len(fingerprints), 500):
        covered.update(
            session.exec(
                select(Subject.fingerprint)
                .join(Batch, Batch.id == Subject.batch_id)
                .where(
                    Subject.environment_id == batch.environment_id,
                    Subject.fingerprint.in_(fingerprints[start : start + 500]),
                    Subject.classification == RowClass.VALID.value,
                    Subject.state != SubjectState.FAILED.value,
                    Subject.batch_id != batch.id,
                    Batch.state.in_([state.value for state in COVERING_STATES]),
                )
            ).all()
        )
    revived = [subject_id for subject_id, fingerprint in rows if fingerprint not in covered]
    for start in range(0, len(revived), 500):
        session.exec(
            sa.update(Subject)
            .where(Subject.id.in_(revived[start : start + 500]))
            .values(
                classification=RowClass.VALID.value,
                state=SubjectState.PENDING.value,
                problem=None,
                warning=(
                    "already requested in a batch that was withdrawn (or where Heap refused it): "
                    "sent with this one"
                ),
            )
        )
    if revived:
        batch.valid_count += len(revived)
        batch.already_requested_count -= len(revived)
        audit.record(
            session,
            actor=SYSTEM,
            action="batch.subjects_revived",
            target_type="batch",
            target_id=batch.id,
            details={"count": len(revived)},
        )
    return len(revived)


def start_batch(session: Session, batch_id: int, *, now: datetime, size: int) -> bool:
    """Plan an approved batch's chunks (once), mark it submitting, commit; True if it has work."""
    batch = lock_batch(session, batch_id)
    if batch is None or batch.state not in {state.value for state in SUBMITTABLE}:
        return False
    if batch.state != BatchState.APPROVED:
        return True
    planned = session.exec(
        select(sa.func.count()).select_from(HeapRequest).where(HeapRequest.batch_id == batch_id)
    ).one()
    try:
        if not planned:
            revived = revive_uncovered(session, batch)
            if return_for_approval(session, batch, revived=revived):
                session.commit()
                return False
        chunks = [] if planned else plan_chunks(session, batch, size=size)
    except (ValueError, DecryptionError) as error:
        session.rollback()
        return _fail_unplannable(session, batch_id, str(error))
    audit.record(
        session,
        actor=SYSTEM,
        action="batch.submission_started",
        target_type="batch",
        target_id=batch.id,
        details={
            "from": BatchState.APPROVED.value,
            "to": BatchState.SUBMITTING.value,
            "chunks": planned or len(chunks),
            "resumed": bool(planned),
            "subjects": sum(chunk.subject_count for chunk in chunks) if chunks else None,
        },
    )
    batch.state = BatchState.SUBMITTING.value
    settle_batch(session, batch, now=now)  # a batch without subjects completes at once
    session.commit()
    return batch.state == BatchState.SUBMITTING


def _reapproval_reason(revived: int, approved: int, current: manifest.Manifest) -> str:
    """Why the batch came back, in words (no identifier: counts only)."""
    if revived:
        people = "1 subject" if revived == 1 else f"{revived:,} subjects"
        return (
            f"Nothing was sent: {people} of this batch had been skipped as already requested in "
            "an earlier batch, which has since been rejected or cancelled (or Heap refused the "
            f"person there). This batch must now send {current.count:,} subjects instead of the "
            f"{approved:,} approved, so it needs a new approval of the new manifest."
        )
    return (
        f"Nothing was sent: the subjects to send changed after approval ({current.count:,} instead "
        f"of the {approved:,} approved, and the manifest's SHA-256 differs), so the batch needs "
        "a new approval of the new manifest."
    )


def return_for_approval(session: Session, batch: Batch, *, revived: int = 0) -> bool:
    """Back to awaiting approval if what would be sent is not the approved manifest; audited.

    DESIGN.md, "Four-eyes on exactly what is sent": an approval covers one set of people; any
    change to it (a revival, an exclusion) needs a new approval, so nothing is sent.
    """
    current = manifest.to_send(session, batch.id)
    approved_sha256 = batch.approved_manifest_sha256
    if approved_sha256 is not None and current.sha256 == approved_sha256:
        return False
    approved = batch.manifest_count if batch.manifest_sha256 == approved_sha256 else 0
    reason = _reapproval_reason(revived, approved, current)
    audit.record(
        session,
        actor=SYSTEM,
        action="batch.returned_for_approval",
        target_type="batch",
        target_id=batch.id,
        details={
            "from": BatchState.APPROVED.value,
            "to": BatchState.AWAITING_APPROVAL.value,
            "approved_manifest": {"count": approved, "sha256": approved_sha256},
            "manifest": {"count": current.count, "sha256": current.sha256},
            "revived": revived,
        },
    )
    batch.state = BatchState.AWAITING_APPROVAL.value
    batch.approved_by = batch.approved_at = batch.approved_manifest_sha256 = None
    batch.manifest_count, batch.manifest_sha256 = current.count, current.sha256
    batch.reapproval_reason = reason
    session.add(batch)
    notifications.batch_awaits_approval(session, batch, again=True)
    return True


def _fail_unplannable(session: Session, batch_id: int, problem: str) -> bool:
    """A batch whose subjects cannot form a Heap request fails with the reason."""
    batch = lock_batch(session, batch_id)
    batch.state = BatchState.FAILED.value
    batch.last_error = f"The subjects of this batch cannot be sent to Heap: {problem}"
    audit.record(
        session,
        actor=SYSTEM,
        action="batch.failed",
        target_type="batch",
        target_id=batch_id,
        details={"from": BatchState.APPROVED.value, "to": batch.state, "reason": batch.last_error},
    )
    notifications.batch_settled(session, batch, BatchState.FAILED)
    session.commit()
    return False


# ── sending and what Heap answered ──────────────────────────────────────────────────────


def claim_for_sending(
    session: Session,
    *,
    chunk_id: int,
    batch_id: int,
    now: datetime,
    fencing_token: int | None,
    subject_count: int,
    sent_sha256: str,
) -> int | None:
    """Mark the chunk `sending` if still due and audit the intent; return the attempt, or None.

    One conditional UPDATE, so a chunk is sent once however many schedulers race for it; the
    caller commits before Heap hears of it.
    """
    statement = (
        sa.update(HeapRequest)
        .where(HeapRequest.id == chunk_id, due_condition(now))
        .values(state=ChunkState.SENDING.value, attempts=HeapRequest.attempts + 1, sent_at=now)
    )
    if fencing_token is not None:
        # Fencing: a scheduler that lost the lease cannot claim anything any more.
        statement = statement.where(held_by(fencing_token))
    if session.exec(statement).rowcount != 1:
        session.rollback()
        return None
    chunk = session.get(HeapRequest, chunk_id, populate_existing=True)
    audit.record(
        session,
        actor=SYSTEM,
        action="heap_request.sending",
        target_type="heap_request",
        target_id=chunk_id,
        details={
            "batch_id": batch_id,
            "chunk_index": chunk.chunk_index,
            "attempt": chunk.attempts,
            "subject_count": subject_count,
            "payload_sha256": sent_sha256,
        },
    )
    return chunk.attempts


def due_condition(now: datetime) -> sa.ColumnElement[bool]:
    """WHERE clause: chunks waiting to be sent whose time has come."""
    return sa.and_(
        HeapRequest.state.in_([ChunkState.QUEUED.value, ChunkState.WAITING_RETRY.value]),
        sa.or_(HeapRequest.next_attempt_at.is_(None), HeapRequest.next_attempt_at <= now),
    )


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
    """429, 5xx, unreachable, refused key: the chunk and its environment wait until retry_at.

    The audit entry holds Heap's status, the error class and the desk's own words; Heap's text,
    redacted, goes only into the purgeable last errors.
    """
    said = _what_heap_said(error, users)
    reason = retry_reason(error, retry_at=retry_at, now=now, detail=said)
    audited = retry_reason(error, retry_at=retry_at, now=now)
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
            **_heap_answer(error),
            "reason": audited,
            "retry_at": retry_at.isoformat(),
        },
    )
    settle_batch(session, batch, now=now, reason=reason, audit_reason=audited)
    return ChunkState.WAITING_RETRY.value


def _heap_answer(error: Exception) -> dict[str, Any]:
    """What the audit trail records of a refusal: Heap's HTTP status and a fixed class."""
    return {"http_status": getattr(error, "status", None), "error_class": error_class(error)}


def _what_heap_said(error: Exception, users: list[dict[str, Any]]) -> str | None:
    """The error's text with the request's identifiers cut out; None when it adds nothing.

    For the purgeable last errors only: it may hold Heap's words, never the audit trail.
    """
    if error_class(error) in ("rate_limited", "unavailable"):
        return None  # the status says it all, and these bodies are proxies' boilerplate
    message = getattr(error, "message", None) or str(error)
    return redact_subjects(message, users)


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
    """Heap refused the request for good (400): the chunk, its subjects and the batch fail.

    Heap's text (it may echo the users) is kept, redacted, only in the purgeable last errors;
    the audit entries hold its status and the error class.
    """
    message = _what_heap_said(error, users) or error_class(error)
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
        {"batch_id": batch.id, "attempt": attempt, **_heap_answer(error)},
    )
    total = session.exec(
        select(sa.func.count()).select_from(HeapRequest).where(HeapRequest.batch_id == batch.id)
    ).one()
    refused = f"Heap refused request {chunk.chunk_index} of {total} for good"
    answer = _heap_answer(error)
    status = f"HTTP {answer['http_status']}, " if answer["http_status"] else ""
    reason = f"{refused}: {message}. Correct the cause, then retry the batch."
    audited = (
        f"{refused} ({status}{answer['error_class']}). Correct the cause, then retry the batch."
    )
    settle_batch(session, batch, now=now, reason=reason, audit_reason=audited)
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


def requeue_for_retry(session: Session, *, actor: str, batch: Batch) -> None:
    """An officer's retry: the batch's refused chunks are queued again, now (failed → approved)."""
    requeued = requeue_batch(session, batch)
    audit.record(
        session,
        actor=actor,
        action="batch.retry_requested",
        target_type="batch",
        target_id=batch.id,
        details={"from": batch.state, "chunks_requeued": requeued},
    )
    batch.state = BatchState.APPROVED.value
    batch.last_error = None
    batch.next_attempt_at = None
    session.add(batch)


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


# ── complete (the polling job) ──────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Completion:
    """A chunk for which Heap now says `complete` about every id."""

    chunk_id: int
    batch_id: int
    rows: tuple[tuple[int, str, str], ...]  # (HeapDeletionId.id, deletion_request_id, stored)


def record_completed(session: Session, completions: list[Completion], *, now: datetime) -> None:
    """Chunks Heap completed: chunks, ids and subjects in bulk; each status change audited."""
    if not completions:
        return
    live = set(
        session.exec(
            select(HeapRequest.id).where(
                HeapRequest.id.in_([c.chunk_id for c in completions]),
                HeapRequest.state == ChunkState.ACCEPTED.value,
            )
        ).all()
    )
    if not live:
        return
    session.exec(
        sa.update(HeapRequest)
        .where(HeapRequest.id.in_(live))
        .values(
            state=ChunkState.COMPLETE.value,
            heap_status=COMPLETE,
            completed_at=now,
            last_polled_at=now,
            next_poll_at=None,
            poll_failures=0,
            last_error=None,
        )
    )
    session.exec(
        sa.update(HeapDeletionId)
        .where(HeapDeletionId.heap_request_id.in_(live))
        .values(
            status=COMPLETE,
            last_polled_at=now,
            completed_at=sa.func.coalesce(HeapDeletionId.completed_at, now),
        )
    )
    session.exec(
        sa.update(Subject)
        .where(Subject.heap_request_id.in_(live), Subject.state == SubjectState.SUBMITTED.value)
        .values(state=SubjectState.COMPLETE.value, completed_at=now)
    )
    for completion in completions:
        if completion.chunk_id not in live:
            continue
        for _, request_id, stored in completion.rows:
            if stored != COMPLETE:
                audit_status_change(
                    session, completion.chunk_id, completion.batch_id, request_id, stored
                )


def complete_chunk(session: Session, chunk: HeapRequest, *, now: datetime) -> None:
    """Heap finished: the chunk and its subjects are complete (`finish_batches` counts them)."""
    chunk.state = ChunkState.COMPLETE.value
    chunk.heap_status = COMPLETE
    chunk.completed_at = now
    chunk.next_poll_at = None
    session.add(chunk)
    session.exec(
        sa.update(Subject)
        .where(Subject.heap_request_id == chunk.id, Subject.state == SubjectState.SUBMITTED.value)
        .values(state=SubjectState.COMPLETE.value, completed_at=now)
    )


def flag_stale(
    session: Session, chunk: HeapRequest, *, now: datetime, stale_after: timedelta
) -> None:
    """Flag (and audit, once) a request Heap has not completed long after accepting it."""
    if chunk.stale or chunk.accepted_at is None or chunk.accepted_at > now - stale_after:
        return
    chunk.stale = True
    audit.record(
        session,
        actor=SYSTEM,
        action="heap_request.stale",
        target_type="heap_request",
        target_id=chunk.id,
        details={
            "batch_id": chunk.batch_id,
            "deletion_request_id": chunk.deletion_request_id,
            "accepted_at": chunk.accepted_at.isoformat(),
            "days_open": (now - chunk.accepted_at).days,
            "status": chunk.heap_status,
        },
    )


def audit_status_change(
    session: Session, chunk_id: int, batch_id: int, request_id: str, old: str, new: str = COMPLETE
) -> None:
    audit.record(
        session,
        actor=SYSTEM,
        action="heap_request.status_changed",
        target_type="heap_request",
        target_id=chunk_id,
        details={"batch_id": batch_id, "deletion_request_id": request_id, "from": old, "to": new},
    )


# ── the batch its chunks imply ──────────────────────────────────────────────────────────


def finish_batches(session: Session, batches: list[Batch], *, now: datetime) -> None:
    """Recount the locked batches' complete subjects and settle their states."""
    for batch in batches:
        batch.completed_count = session.exec(
            select(sa.func.count())
            .select_from(Subject)
            .where(Subject.batch_id == batch.id, Subject.state == SubjectState.COMPLETE.value)
        ).one()
        settle_batch(session, batch, now=now)


def _derive_state(states: list[str]) -> BatchState:
    """The batch state its chunks imply (a batch without chunks has nothing left to do)."""
    if all(state == ChunkState.COMPLETE for state in states):
        return BatchState.COMPLETE
    # A request Heap refused for good does not hold the others back: every other person's
    # deadline is still running. The batch fails once nothing is left to send.
    unsent = {ChunkState.QUEUED, ChunkState.SENDING, ChunkState.WAITING_RETRY}
    if ChunkState.FAILED in states and not unsent.intersection(states):
        return BatchState.FAILED
    if all(state in (ChunkState.ACCEPTED, ChunkState.COMPLETE) for state in states):
        return BatchState.POLLING
    if ChunkState.WAITING_RETRY in states:
        return BatchState.WAITING_RETRY
    return BatchState.SUBMITTING


def _settled_reason(new: BatchState, rows: list) -> str:
    """Why a batch waits or failed, from its chunks alone (no text Heap answered)."""
    states = [state for state, _ in rows]
    if new == BatchState.FAILED:
        failed = states.count(ChunkState.FAILED)
        return (
            f"Heap refused {failed} of {len(states)} request(s) for good. Correct the cause, "
            "then retry the batch."
        )
    waiting = states.count(ChunkState.WAITING_RETRY)
    return f"{waiting} of {len(states)} request(s) wait to be sent again."


def settle_batch(
    session: Session,
    batch: Batch,
    *,
    now: datetime,
    reason: str | None = None,
    audit_reason: str | None = None,
) -> None:
    """Move a locked batch to the state its chunks imply, auditing a change.

    `reason` becomes the batch's (purgeable) last error and may hold Heap's redacted text;
    the audit entry says `audit_reason`, the desk's own words, never the last error.
    """
    if batch.state not in {
        BatchState.SUBMITTING,
        BatchState.WAITING_RETRY,
        BatchState.POLLING,
        BatchState.FAILED,
    }:
        return  # not started yet, or finished: nothing derives from the chunks
    rows = session.exec(
        select(HeapRequest.state, HeapRequest.next_attempt_at).where(
            HeapRequest.batch_id == batch.id
        )
    ).all()
    new = _derive_state([state for state, _ in rows])
    if new == BatchState.WAITING_RETRY:
        waits = [at for state, at in rows if state == ChunkState.WAITING_RETRY and at]
        batch.next_attempt_at = min(waits) if waits else None
        batch.last_error = reason or batch.last_error
    elif new == BatchState.FAILED or ChunkState.FAILED in [state for state, _ in rows]:
        batch.last_error = reason or batch.last_error  # keep Heap's refusal in view
    else:
        batch.last_error = None
        if new != BatchState.SUBMITTING:
            batch.next_attempt_at = None
    if new == BatchState.POLLING and batch.submitted_at is None:
        batch.submitted_at = now
    if new == BatchState.COMPLETE:
        batch.submitted_at = batch.submitted_at or now
        batch.completed_at = now
        batch.completed_count = session.exec(
            select(sa.func.count())
            .select_from(Subject)
            .where(Subject.batch_id == batch.id, Subject.state == SubjectState.COMPLETE.value)
        ).one()
    if new != batch.state:
        details: dict[str, Any] = {"from": batch.state, "to": new.value}
        if new in (BatchState.WAITING_RETRY, BatchState.FAILED):
            details["reason"] = audit_reason or _settled_reason(new, rows)
        if new == BatchState.COMPLETE:
            details["completed_subjects"] = batch.completed_count
        audit.record(
            session,
            actor=SYSTEM,
            action=BATCH_ACTIONS[new],
            target_type="batch",
            target_id=batch.id,
            details=details,
        )
        batch.state = new.value
        notifications.batch_settled(session, batch, new)
    session.add(batch)
