"""The scheduler lease: one row elects the one process whose periodic jobs do the work.

APScheduler cannot share a job store between processes (PITFALLS.md #13), so every process may
run a scheduler, but each tick first renews or takes the lease in the database; only the holder
works. The fencing token grows each time the holder changes: a job that checks it before writing
(`lease_is_current`, or `held_by` in a statement) cannot act for a scheduler that lost the lease.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import update
from sqlmodel import Session

from webapp.models import SchedulerLease, utcnow

log = logging.getLogger(__name__)
LEASE_NAME = "scheduler"


def holder_id() -> str:
    """A name for this process, unique across hosts and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire_lease(session: Session, *, holder: str, ttl_seconds: int) -> int | None:
    """Renew our lease or take an expired one; return the fencing token, or None if not ours.

    Every step is a single conditional UPDATE (or an INSERT guarded by the primary key), so
    two schedulers racing for the lease cannot both win.
    """
    now = utcnow()
    expires = now + timedelta(seconds=ttl_seconds)
    renewed = session.exec(
        update(SchedulerLease)
        .where(
            SchedulerLease.name == LEASE_NAME,
            SchedulerLease.holder == holder,
            SchedulerLease.expires_at > now,
        )
        .values(renewed_at=now, expires_at=expires)
    )
    if renewed.rowcount == 1:
        session.commit()
        return session.get(SchedulerLease, LEASE_NAME, populate_existing=True).fencing_token
    taken = session.exec(
        update(SchedulerLease)
        .where(SchedulerLease.name == LEASE_NAME, SchedulerLease.expires_at <= now)
        .values(
            holder=holder,
            acquired_at=now,
            renewed_at=now,
            expires_at=expires,
            fencing_token=SchedulerLease.fencing_token + 1,
        )
    )
    if taken.rowcount == 1:
        session.commit()
        lease = session.get(SchedulerLease, LEASE_NAME, populate_existing=True)
        log.info("scheduler lease taken over (fencing token %s)", lease.fencing_token)
        return lease.fencing_token
    if session.get(SchedulerLease, LEASE_NAME, populate_existing=True) is None:
        session.add(
            SchedulerLease(
                name=LEASE_NAME,
                holder=holder,
                fencing_token=1,
                acquired_at=now,
                renewed_at=now,
                expires_at=expires,
            )
        )
        try:
            session.commit()
        except Exception:  # noqa: BLE001 - another scheduler inserted it first
            session.rollback()
            return None
        log.info("scheduler lease created")
        return 1
    session.rollback()
    return None


def release_lease(session: Session, *, holder: str) -> None:
    """Give the lease up at shutdown so another scheduler can take over at once."""
    session.exec(
        update(SchedulerLease)
        .where(SchedulerLease.name == LEASE_NAME, SchedulerLease.holder == holder)
        .values(expires_at=utcnow())
    )
    session.commit()


def lease_is_current(session: Session, fencing_token: int) -> bool:
    """True while `fencing_token` is still the lease's: no other scheduler has taken over."""
    lease = session.get(SchedulerLease, LEASE_NAME, populate_existing=True)
    return lease is not None and lease.fencing_token == fencing_token


def lease_status(session: Session) -> dict:
    """Who holds the lease and when it last ticked (for /health)."""
    lease = session.get(SchedulerLease, LEASE_NAME)
    if lease is None:
        return {"lease_holder": None}
    now = utcnow()
    return {
        "lease_holder": lease.holder,
        "lease_valid": lease.expires_at > now,
        "fencing_token": lease.fencing_token,
        "last_tick_at": lease.last_tick_at.isoformat() if lease.last_tick_at else None,
        "last_tick_age_seconds": (
            round((now - lease.last_tick_at).total_seconds(), 1) if lease.last_tick_at else None
        ),
    }


def held_by(fencing_token: int) -> sa.TextClause:
    """SQL condition: the lease still carries `fencing_token` (fences a single statement)."""
    return sa.text(
        "EXISTS (SELECT 1 FROM scheduler_leases WHERE name = :lease AND fencing_token = :token)"
    ).bindparams(lease=LEASE_NAME, token=fencing_token)
