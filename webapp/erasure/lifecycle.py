"""A batch's Heap deletion requests (chunks): settings, planning, payloads, batch state.

Shared by the submission and polling jobs. Lock order, to keep PostgreSQL free of deadlocks:
every transaction that may change a batch's state locks the batch row first (`lock_batch`),
then its chunks, then appends to the audit trail.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, select

from webapp.crypto import DecryptionError, decrypt
from webapp.heap.validation import MAX_DELETION_USERS, validate_deletion_users
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
from webapp.trail import audit

SYSTEM = audit.SYSTEM_ACTOR

# Config keys (app.config) and their defaults.
DEFAULTS: dict[str, int] = {
    "DESK_SUBMIT_INTERVAL_SECONDS": 5,
    "DESK_CHUNK_SIZE": MAX_DELETION_USERS,
    "DESK_POLL_INTERVAL_SECONDS": 900,
    "DESK_POLL_CONCURRENCY": 4,
    "DESK_STALE_AFTER_DAYS": 30,
}

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
_DIGITS = re.compile(r"\d+")


def setting(app: Flask, name: str) -> int:
    """An integer DESK_* setting from app.config, or its default."""
    value = app.config.get(name)
    return DEFAULTS[name] if value is None else int(value)


def chunk_size(app: Flask) -> int:
    """Subjects per Heap request: the configured size within Heap's 1..10,000."""
    return max(1, min(setting(app, "DESK_CHUNK_SIZE"), MAX_DELETION_USERS))


def payload_sha256(users: list[dict[str, Any]]) -> str:
    """SHA-256 of the request body `{"users": [...]}` in the audit trail's canonical JSON."""
    return hashlib.sha256(audit.canonical_json({"users": users}).encode("utf-8")).hexdigest()


def deletion_user(kind: str | None, identifier_encrypted: str | None) -> dict[str, Any]:
    """One element of a deletion body, decrypted just now (user_id as a JSON number)."""
    if not identifier_encrypted:
        raise ValueError("a subject to be deleted has no stored identifier")
    text = decrypt(identifier_encrypted)
    return {"user_id": int(text)} if kind == "user_id" else {"identity": text}


def chunk_users(session: Session, chunk_id: int) -> list[dict[str, Any]]:
    """The exact `users` list of a chunk, in subject order (raw identifiers: memory only)."""
    rows = session.exec(
        select(Subject.kind, Subject.identifier_encrypted)
        .where(Subject.heap_request_id == chunk_id)
        .order_by(Subject.id)
    ).all()
    return validate_deletion_users([deletion_user(kind, token) for kind, token in rows])


def redact_subjects(message: str, users: list[dict[str, Any]]) -> str:
    """Remove any of the chunk's identifiers that Heap may echo in an error message."""
    for user in users:
        identity = user.get("identity")
        if identity and identity in message:
            message = message.replace(identity, "[identity]")
    user_ids = {str(user["user_id"]) for user in users if "user_id" in user}
    if user_ids:
        message = _DIGITS.sub(
            lambda m: "[user_id]" if m.group() in user_ids else m.group(), message
        )
    return message


def lock_batch(session: Session, batch_id: int) -> Batch | None:
    """The batch, freshly read and locked for this transaction (FOR UPDATE on PostgreSQL)."""
    return session.exec(
        select(Batch)
        .where(Batch.id == batch_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


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


def revive_uncovered(session: Session, batch: Batch) -> int:
    """Send "already requested" subjects that no approved batch covers any more.

    At upload a subject also held by an earlier batch is skipped, even if that batch still
    awaits approval. If that batch was then rejected or cancelled (or never approved), skipping
    would lose the deletion: at submission such subjects go back to `valid`.
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
                    Batch.state.in_([state.value for state in COMMITTED_STATES]),
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
                warning="already requested in a batch that was not approved: sent with this one",
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
            revive_uncovered(session, batch)
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
    session.commit()
    return False


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


def settle_batch(
    session: Session, batch: Batch, *, now: datetime, reason: str | None = None
) -> None:
    """Move a locked batch to the state its chunks imply, auditing a change."""
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
        if new in (BatchState.WAITING_RETRY, BatchState.FAILED) and batch.last_error:
            details["reason"] = batch.last_error
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
    session.add(batch)


def format_retry_time(when: datetime, now: datetime) -> str:
    """'14:05 UTC' today, '2025-03-02 14:05 UTC' on another day."""
    return f"{when:%H:%M} UTC" if when.date() == now.date() else f"{when:%Y-%m-%d %H:%M} UTC"


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
