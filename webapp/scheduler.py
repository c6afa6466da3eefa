"""Periodic jobs: APScheduler 3 in memory, one working scheduler elected by a lease row.

APScheduler cannot share a job store between processes (PITFALLS.md #13), so every process may
run a scheduler, but each tick first renews or takes the lease in the database; only the holder
works. Jobs are short ticks over state kept in the desk's own tables.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import update
from sqlmodel import Session

from .db import session_scope
from .models import SchedulerLease, utcnow

log = logging.getLogger(__name__)
LEASE_NAME = "scheduler"


@dataclass
class Job:
    """A periodic tick: `run(app, fencing_token)` is called only in the lease holder."""

    id: str
    run: Callable[[Flask, int], None]
    seconds: Callable[[Flask], int]


# Every periodic job of the desk, in one list (redash's pattern). Later modules append here.
JOBS: list[Job] = []


def register(job_id: str, seconds: Callable[[Flask], int]):
    """Decorator adding a function to JOBS."""

    def decorator(func: Callable[[Flask, int], None]):
        JOBS.append(Job(id=job_id, run=func, seconds=seconds))
        return func

    return decorator


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


class DeskScheduler:
    """An APScheduler that runs the desk's jobs only while it holds the lease."""

    def __init__(self, app: Flask, *, holder: str | None = None):
        self.app = app
        self.holder = holder or holder_id()
        self.scheduler = BackgroundScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        self._lock = threading.Lock()

    def lease_ttl(self) -> int:
        # A tick interval plus slack: a dead holder is replaced within about one interval.
        return int(self.app.config.get("DESK_LEASE_SECONDS", 60))

    def tick(self, job: Job) -> bool:
        """One run of a job, guarded by the lease; True if this process ran it."""
        with self.app.app_context():
            try:
                with session_scope(write=True, app=self.app) as session:
                    token = acquire_lease(session, holder=self.holder, ttl_seconds=self.lease_ttl())
                if token is None:
                    return False
                job.run(self.app, token)
                with session_scope(write=True, app=self.app) as session:
                    session.exec(
                        update(SchedulerLease)
                        .where(
                            SchedulerLease.name == LEASE_NAME, SchedulerLease.holder == self.holder
                        )
                        .values(last_tick_at=utcnow())
                    )
                    session.commit()
            except Exception:
                log.exception("scheduled job %s failed", job.id)
                return False
        return True

    def start(self) -> None:
        """Add every job and start the background thread."""
        for job in JOBS:
            seconds = max(1, job.seconds(self.app))
            self.scheduler.add_job(
                self.tick,
                "interval",
                args=[job],
                id=job.id,
                seconds=seconds,
                misfire_grace_time=seconds,
                next_run_time=utcnow() + timedelta(seconds=1),
            )
        self.scheduler.start()
        self.app.extensions["desk_scheduler_status"] = self.status
        log.info("scheduler started with %d job(s)", len(JOBS))

    def status(self) -> dict:
        with session_scope(write=False, app=self.app) as session:
            return {"this_process": self.holder, **lease_status(session)}

    def shutdown(self) -> None:
        """Stop the jobs and hand the lease back."""
        self.scheduler.shutdown(wait=True)
        with self.app.app_context(), session_scope(write=True, app=self.app) as session:
            release_lease(session, holder=self.holder)


def tick_once(app: Flask, *, holder: str | None = None) -> list[str]:
    """Run every job once under the lease (tests, one-shot runs); return the ids that ran."""
    load_jobs()
    runner = DeskScheduler(app, holder=holder)
    return [job.id for job in JOBS if runner.tick(job)]


def load_jobs() -> None:
    """Import the modules that register jobs (kept out of import time of this module)."""
    from . import alerts, checkpoints, heartbeat, retention, workflow_jobs  # noqa: F401
