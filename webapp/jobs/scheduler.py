"""The desk's scheduler: APScheduler 3 in memory, running the jobs of `schedule.JOBS`.

Every process may run one; each tick first renews or takes the lease (`webapp.lease`) and only
the holder works. Jobs are short ticks over state kept in the desk's own tables.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import update

from webapp.db import session_scope
from webapp.jobs.schedule import JOBS, Job
from webapp.lease import LEASE_NAME, acquire_lease, holder_id, lease_status, release_lease
from webapp.models import SchedulerLease, utcnow

log = logging.getLogger(__name__)


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
    runner = DeskScheduler(app, holder=holder)
    return [job.id for job in JOBS if runner.tick(job)]
