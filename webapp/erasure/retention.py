"""Retention: purge raw identifiers DESK_RETENTION_DAYS after they stop being needed.

A subject's identifier is needed until Heap completes its deletion (and, for rows never sent,
until their batch is closed). After that the desk keeps only the fingerprint, which is all that
lookups, reports, certificates and the audit trail use — so every proof keeps working. Heap's
texts kept about purged people (last errors) and about corrections past retention go too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, select

from webapp.db import session_scope
from webapp.lease import lease_is_current
from webapp.models import (
    Batch,
    BatchState,
    Correction,
    CorrectionCall,
    HeapRequest,
    Subject,
    SubjectState,
    utcnow,
)
from webapp.trail import audit

log = logging.getLogger(__name__)

# Batches that will never send anything more: their unsent rows need no identifier either.
CLOSED_BATCH_STATES = (BatchState.COMPLETE, BatchState.REJECTED, BatchState.CANCELLED)


@dataclass
class PurgeResult:
    """What one purge run did."""

    purged: int
    batch_ids: list[int]
    cutoff: datetime


def _due(cutoff: datetime):
    """Subjects whose identifier is still stored and no longer needed since before `cutoff`."""
    closed_before = (
        select(Batch.id)
        .where(Batch.state.in_([s.value for s in CLOSED_BATCH_STATES]))
        .where(
            sa.func.coalesce(Batch.completed_at, Batch.rejected_at, Batch.cancelled_at) <= cutoff
        )
    )
    return sa.and_(
        Subject.identifier_encrypted.is_not(None),
        sa.or_(
            sa.and_(Subject.state == SubjectState.COMPLETE.value, Subject.completed_at <= cutoff),
            Subject.batch_id.in_(closed_before),
        ),
    )


def purge(
    session: Session, *, actor: str, retention_days: int, now: datetime | None = None
) -> PurgeResult:
    """Purge every identifier past retention; one audit entry for the run; commits.

    A run that finds nothing changes nothing and writes no entry.
    """
    now = now or utcnow()
    cutoff = now - timedelta(days=retention_days)
    condition = _due(cutoff)
    # The write session holds the lock from here: the set cannot change before the UPDATE.
    batch_ids = sorted(session.exec(select(Subject.batch_id).where(condition).distinct()).all())
    purged = 0
    if batch_ids:
        purged = session.exec(
            sa.update(Subject)
            .where(condition)
            .values(identifier_encrypted=None, purged_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    cleared = clear_heap_texts(session, cutoff)
    if not purged and not cleared:
        session.rollback()
        return PurgeResult(0, [], cutoff)
    audit.record(
        session,
        actor=actor,
        action="retention.purged",
        target_type="retention",
        target_id="subjects",
        details={
            "purged": purged,
            "batch_ids": batch_ids,
            "retention_days": retention_days,
            "cutoff": audit.format_at(cutoff),
            "heap_texts_cleared": cleared,
        },
    )
    session.commit()
    log.info("retention purge: %s identifier(s) purged in %s batch(es)", purged, len(batch_ids))
    return PurgeResult(purged, batch_ids, cutoff)


def clear_heap_texts(session: Session, cutoff: datetime) -> int:
    """Clear what Heap answered once its people are purged: the texts may echo them.

    Heap's error texts are kept (redacted) on a request, a batch and a correction call for the
    officer's sake; once a batch's identifiers are gone, or a correction is past retention,
    nothing needs them, and a spelling the redaction missed must not outlive the identifiers.
    """
    # Purged subjects and none left with an identifier: those of earlier runs count too.
    purged = sa.exists().where(Subject.purged_at.is_not(None))
    kept = sa.exists().where(Subject.identifier_encrypted.is_not(None))
    chunks = session.exec(
        sa.update(HeapRequest)
        .where(
            HeapRequest.last_error.is_not(None),
            purged.where(Subject.heap_request_id == HeapRequest.id),
            ~kept.where(Subject.heap_request_id == HeapRequest.id),
        )
        .values(last_error=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    batches = session.exec(
        sa.update(Batch)
        .where(
            Batch.last_error.is_not(None),
            purged.where(Subject.batch_id == Batch.id),
            ~kept.where(Subject.batch_id == Batch.id),
        )
        .values(last_error=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    # A correction's calls are done with once it is: its Heap texts go after retention.
    done = select(Correction.id).where(
        Correction.completed_at.is_not(None), Correction.completed_at <= cutoff
    )
    calls = session.exec(
        sa.update(CorrectionCall)
        .where(CorrectionCall.heap_message.is_not(None), CorrectionCall.correction_id.in_(done))
        .values(heap_message=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    corrections = session.exec(
        sa.update(Correction)
        .where(Correction.heap_message.is_not(None), Correction.id.in_(done))
        .values(heap_message=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    return chunks + batches + calls + corrections


def scheduled_purge(app: Flask, fencing_token: int) -> None:
    """Purge what retention allows (hourly ticks, so at least daily; no entry when idle)."""
    with session_scope(write=True, app=app) as session:
        if lease_is_current(session, fencing_token):
            purge(
                session, actor=audit.SYSTEM_ACTOR, retention_days=app.config["DESK_RETENTION_DAYS"]
            )
