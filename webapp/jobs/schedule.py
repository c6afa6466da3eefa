"""Every periodic job of the desk, in one list (redash's pattern).

A job is a short tick over state in the desk's own tables, run only in the process holding the
scheduler lease. Nothing registers itself on import: a job runs because it is listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask

from webapp.erasure import deadline_notices, polling, retention, submission
from webapp.erasure.settings import setting
from webapp.evidence import checkpoints, tree_heads
from webapp.jobs import alerts
from webapp.notifications import mail as notification_mail


@dataclass(frozen=True)
class Job:
    """A periodic tick: `run(app, fencing_token)` is called only in the lease holder."""

    id: str
    run: Callable[[Flask, int], object]
    seconds: Callable[[Flask], int]


def heartbeat(app: Flask, fencing_token: int) -> None:
    """Nothing to do but prove the scheduler is alive: DeskScheduler.tick records the tick."""


def _lease_seconds(app: Flask) -> int:
    return int(app.config.get("DESK_LEASE_SECONDS", 60))


def _evidence_tick_seconds(app: Flask) -> int:
    # Hourly ticks: checkpoints and purges are due at most daily, and do nothing when idle.
    return int(app.config.get("DESK_EVIDENCE_TICK_SECONDS", 3600))


JOBS: tuple[Job, ...] = (
    # Failure mail at once, the digest daily.
    Job(
        "alerts",
        run=alerts.run,
        seconds=lambda app: int(app.config.get("DESK_ALERT_INTERVAL_SECONDS", 60)),
    ),
    # Notifications by e-mail, within a minute of the event (webapp/notifications/mail.py).
    Job("notification_mail", run=notification_mail.run, seconds=notification_mail.interval_seconds),
    # Once a day per batch, its uploader hears of deadlines passed or due within 7 days.
    Job("deadline_notices", run=deadline_notices.scheduled_notices, seconds=_evidence_tick_seconds),
    # A signed checkpoint once an unsigned audit entry is a day old.
    Job("audit_checkpoint", run=checkpoints.scheduled_checkpoint, seconds=_evidence_tick_seconds),
    # A signed tree head whenever the trail grew, at most DESK_STH_EVERY_SECONDS apart.
    Job(
        "tree_head",
        run=tree_heads.scheduled_tree_head,
        seconds=lambda app: int(app.config.get("DESK_STH_EVERY_SECONDS", 60)),
    ),
    # Keeps the lease renewed (a third of its lifetime) and the last tick fresh for /health.
    Job("heartbeat", run=heartbeat, seconds=lambda app: _lease_seconds(app) // 3),
    # Raw identifiers purged once retention allows.
    Job("retention_purge", run=retention.scheduled_purge, seconds=_evidence_tick_seconds),
    # The due chunks of approved batches sent to Heap.
    Job(
        "submit_batches",
        run=submission.submit_due,
        seconds=lambda app: setting(app, "DESK_SUBMIT_INTERVAL_SECONDS"),
    ),
    # Every open Heap deletion request asked about once per poll interval.
    Job("poll_heap", run=polling.poll_due, seconds=polling.poll_tick_seconds),
)
