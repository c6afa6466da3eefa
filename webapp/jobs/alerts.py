"""E-mail alerts: a daily digest of what needs attention, and a mail when Heap refuses a request.

A scheduler tick (the lease holder only) composes what is due, sends it after the reading
transaction has ended, and then records it in the audit trail: `alert.digest_sent` remembers the
day of the last digest, `alert.failure_sent` the last `heap_request.failed` entry reported. The
trail is the only state, so no table is needed and a takeover by another scheduler resumes
exactly where the last one stopped. A mail that cannot be sent is retried on the next tick.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, select

from webapp import mailer
from webapp.db import session_scope
from webapp.jobs.digest import LIST_LIMIT, batch_url, build_digest
from webapp.lease import lease_is_current
from webapp.models import AuditEntry, Batch, Environment, HeapRequest, utcnow
from webapp.trail import audit

log = logging.getLogger(__name__)

SYSTEM = audit.SYSTEM_ACTOR
DIGEST_SENT = "alert.digest_sent"
FAILURE_SENT = "alert.failure_sent"
ALERT_FAILED = "alert.failed"
HEAP_REQUEST_FAILED = "heap_request.failed"  # written by erasure.lifecycle.record_failed
# When alerts are first turned on, older refusals are left to the digest, not mailed one by one.
FIRST_SCAN_WINDOW = timedelta(days=7)
SUBJECT_PREFIX = "[Deletion Desk]"


@dataclass
class Outgoing:
    """A composed mail and the audit entry that records it once it has been sent."""

    kind: str  # digest | failure
    subject: str
    text: str
    html: str
    action: str
    details: dict


@dataclass
class FailureLine:
    """One request Heap refused for good, as the failure mail lists it."""

    chunk_id: int
    batch_id: int
    environment: str
    url: str
    chunk_index: int
    chunk_total: int
    http_status: int | None
    at: str


def run(app: Flask, fencing_token: int, *, now: datetime | None = None) -> list[str]:
    """One tick: compose, send and record whatever is due; return the kinds of mail sent."""
    settings = mailer.smtp_settings(app)
    if settings is None:
        return []
    now = now or utcnow()
    sent = []
    for compose in (failure_mail, digest_mail):
        with session_scope(write=False, app=app) as session:
            if not lease_is_current(session, fencing_token):
                return sent  # another scheduler took over: it sends from here on
            outgoing = compose(session, app, now)
        if outgoing is None:
            continue
        message = mailer.build_message(
            settings, subject=outgoing.subject, text=outgoing.text, html=outgoing.html, now=now
        )
        try:
            mailer.send(settings, message)
        except mailer.MailError as error:
            log.warning("%s alert not sent, retrying next tick: %s", outgoing.kind, error)
            record_send_failure(app, kind=outgoing.kind, error=str(error), now=now)
            continue
        with session_scope(write=True, app=app) as session:
            audit.record(
                session,
                actor=SYSTEM,
                action=outgoing.action,
                target_type="alert",
                target_id=outgoing.kind,
                details={**outgoing.details, "recipients": list(settings.recipients)},
            )
            session.commit()
        sent.append(outgoing.kind)
    return sent


def last_details(session: Session, action: str) -> dict:
    """The details of the newest audit entry of `action` ({} if none): the alerts' memory."""
    found = session.exec(
        select(AuditEntry.details)
        .where(AuditEntry.action == action)
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    ).first()
    return json.loads(found) if found else {}


def record_send_failure(app: Flask, *, kind: str, error: str, now: datetime) -> None:
    """Audit a failed send once per day (UTC): an SMTP outage must not flood the trail."""
    day = now.date().isoformat()
    with session_scope(write=True, app=app) as session:
        if last_details(session, ALERT_FAILED).get("day") == day:
            return
        audit.record(
            session,
            actor=SYSTEM,
            action=ALERT_FAILED,
            target_type="alert",
            target_id=kind,
            details={"day": day, "error": error},
        )
        session.commit()


def render(app: Flask, name: str, **context) -> tuple[str, str]:
    """The plain-text and HTML bodies from templates/mail/<name>.txt and .html."""
    env = app.jinja_env  # .html templates are autoescaped, .txt ones are not
    text = env.get_template(f"mail/{name}.txt").render(**context)
    html = env.get_template(f"mail/{name}.html").render(**context)
    return text, html


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


# --- immediate mail: Heap refused a request for good --------------------------------------


def new_failures(session: Session, *, now: datetime, public_url: str) -> tuple[list, int]:
    """Refusals logged since the last failure mail, and the seq of the newest of them."""
    cursor = int(last_details(session, FAILURE_SENT).get("through_seq", 0))
    query = select(AuditEntry.seq, AuditEntry.at, AuditEntry.target_id, AuditEntry.details).where(
        AuditEntry.action == HEAP_REQUEST_FAILED, AuditEntry.seq > cursor
    )
    if cursor == 0:
        query = query.where(AuditEntry.at >= audit.format_at(now - FIRST_SCAN_WINDOW))
    rows = session.exec(query.order_by(AuditEntry.seq).limit(LIST_LIMIT)).all()
    if not rows:
        return [], cursor
    chunk_ids = {int(target_id) for _, _, target_id, _ in rows}
    chunks = {
        chunk.id: (chunk, environment)
        for chunk, environment in session.exec(
            select(HeapRequest, Environment.name)
            .join(Batch, Batch.id == HeapRequest.batch_id)
            .join(Environment, Environment.id == Batch.environment_id)
            .where(HeapRequest.id.in_(chunk_ids))
        )
    }
    batch_ids = {chunk.batch_id for chunk, _ in chunks.values()}
    totals = dict(
        session.exec(
            select(HeapRequest.batch_id, sa.func.count())
            .where(HeapRequest.batch_id.in_(batch_ids))
            .group_by(HeapRequest.batch_id)
        ).all()
    )
    lines = []
    for _seq, at, target_id, details in rows:
        if int(target_id) not in chunks:
            continue
        chunk, environment = chunks[int(target_id)]
        lines.append(
            FailureLine(
                chunk_id=chunk.id,
                batch_id=chunk.batch_id,
                environment=environment,
                url=batch_url(public_url, chunk.batch_id),
                chunk_index=chunk.chunk_index,
                chunk_total=totals.get(chunk.batch_id, 1),
                http_status=json.loads(details).get("http_status"),
                at=at[:16].replace("T", " ") + " UTC",
            )
        )
    return lines, rows[-1][0]


def failure_mail(session: Session, app: Flask, now: datetime) -> Outgoing | None:
    """The mail about requests Heap refused since the last one, or None."""
    lines, through_seq = new_failures(session, now=now, public_url=app.config["DESK_PUBLIC_URL"])
    if not lines:
        return None
    batches = sorted({line.batch_id for line in lines})
    what = "a deletion request" if len(lines) == 1 else f"{len(lines)} deletion requests"
    text, html = render(app, "failure", failures=lines)
    return Outgoing(
        kind="failure",
        subject=f"{SUBJECT_PREFIX} Heap refused {what} for good",
        text=text,
        html=html,
        action=FAILURE_SENT,
        details={
            "through_seq": through_seq,
            "heap_requests": [line.chunk_id for line in lines],
            "batches": batches,
        },
    )


# --- the daily digest -----------------------------------------------------------------------


def digest_mail(session: Session, app: Flask, now: datetime) -> Outgoing | None:
    """Today's digest once DESK_DIGEST_HOUR_UTC has passed, unless sent already or empty."""
    if now.hour < app.config["DESK_DIGEST_HOUR_UTC"]:
        return None
    day = now.date().isoformat()
    if last_details(session, DIGEST_SENT).get("day", "") >= day:
        return None
    digest = build_digest(session, now=now, public_url=app.config["DESK_PUBLIC_URL"])
    if digest.empty:
        return None  # nothing needs attention; checked again next tick in case that changes
    counts = digest.summary()
    parts = [
        (counts["overdue"], "overdue", "overdue"),
        (counts["due_soon"], "due within 7 days", "due within 7 days"),
        (counts["awaiting_approval"], "awaiting approval", "awaiting approval"),
        (counts["failing_batches"], "batch failing", "batches failing"),
        (
            counts["problem_requests"],
            "Heap request failed or stale",
            "Heap requests failed or stale",
        ),
    ]
    text, html = render(
        app, "digest", digest=digest, when=_when, public_url=app.config["DESK_PUBLIC_URL"]
    )
    return Outgoing(
        kind="digest",
        subject=f"{SUBJECT_PREFIX} Digest {day}: "
        + ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in parts if n),
        text=text,
        html=html,
        action=DIGEST_SENT,
        details={"day": day, **counts},
    )
