"""Retention: purge raw identifiers DESK_RETENTION_DAYS after they stop being needed.

A subject's identifier is needed until Heap completes its deletion (and, for rows never sent,
until their batch is closed). After that the desk keeps only the fingerprint, which is all that
lookups, reports, certificates and the audit trail use — so every proof keeps working.
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
from webapp.models import Batch, BatchState, Subject, SubjectState, utcnow
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
    if not batch_ids:
        session.rollback()
        return PurgeResult(0, [], cutoff)
    purged = session.exec(
        sa.update(Subject)
        .where(condition)
        .values(identifier_encrypted=None, purged_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
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
        },
    )
    session.commit()
    log.info("retention purge: %s identifier(s) purged in %s batch(es)", purged, len(batch_ids))
    return PurgeResult(purged, batch_ids, cutoff)


def scheduled_purge(app: Flask, fencing_token: int) -> None:
    """Purge what retention allows (hourly ticks, so at least daily; no entry when idle)."""
    with session_scope(write=True, app=app) as session:
        if lease_is_current(session, fencing_token):
            purge(
                session, actor=audit.SYSTEM_ACTOR, retention_days=app.config["DESK_RETENTION_DAYS"]
            )
