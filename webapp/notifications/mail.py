"""The notification outbox: a scheduler tick e-mails pending notifications, each once.

A notification is created `pending` in the transaction of its event; this tick (the lease
holder's, every DESK_NOTIFICATION_MAIL_SECONDS, 30 by default) sends it to its person when SMTP
is configured and their preferences ask for that kind, then marks it `sent` — or `skipped` when
they do not want it, their account is disabled, or it is older than MAX_AGE (mail about
yesterday's news, e.g. once SMTP is first configured, helps nobody; the inbox still has it).
Nothing is sent from a request, so no page waits for an SMTP server.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask
from sqlmodel import select

from webapp import mailer
from webapp.db import session_scope
from webapp.lease import lease_is_current
from webapp.models import MailState, Notification, NotificationKind, User, utcnow
from webapp.notifications.preferences import KIND_LABELS, email_preferences

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "[Deletion Desk]"
PER_TICK = 50
MAX_AGE = timedelta(hours=24)
# An SMTP server that is down costs each tick this many timeouts, not one per pending mail.
MAX_FAILURES_PER_TICK = 3


@dataclass(frozen=True)
class Outgoing:
    """One notification to mail, read before any SMTP conversation starts."""

    notification_id: int
    address: str
    kind: NotificationKind
    text: str
    url: str


def interval_seconds(app: Flask) -> int:
    """How often the outbox is worked through: at most a minute, so mail is prompt."""
    return min(60, int(app.config.get("DESK_NOTIFICATION_MAIL_SECONDS", 30)))


def _url(public_url: str, row: Notification) -> str:
    if row.batch_id is not None:
        return f"{public_url}/batches/{row.batch_id}"
    if row.correction_id is not None:
        return f"{public_url}/corrections/{row.correction_id}"
    return f"{public_url}/notifications"


def due_mail(app: Flask, fencing_token: int, *, now: datetime) -> list[Outgoing] | None:
    """Mark what is not to be mailed skipped; return what is (None: not the lease holder)."""
    public_url = app.config["DESK_PUBLIC_URL"]
    with session_scope(write=True, app=app) as session:
        if not lease_is_current(session, fencing_token):
            return None
        rows = session.exec(
            select(Notification, User.email, User.is_active)
            .join(User, User.id == Notification.user_id)
            .where(Notification.mail_state == MailState.PENDING.value)
            .order_by(Notification.id)
            .limit(PER_TICK)
        ).all()
        wanted: dict[int, dict] = {}
        outgoing, skipped = [], []
        for row, address, active in rows:
            if row.user_id not in wanted:
                wanted[row.user_id] = email_preferences(session, row.user_id)
            kind = NotificationKind(row.kind)
            if not active or row.created_at < now - MAX_AGE or not wanted[row.user_id][kind]:
                skipped.append(row.id)
                continue
            outgoing.append(Outgoing(row.id, address, kind, row.text, _url(public_url, row)))
        if skipped:
            session.exec(
                sa.update(Notification)
                .where(Notification.id.in_(skipped))
                .values(mail_state=MailState.SKIPPED.value)
            )
            session.commit()
    return outgoing


def _message(app: Flask, settings: mailer.SmtpSettings, item: Outgoing, now: datetime):
    context = {
        "label": KIND_LABELS[item.kind],
        "text": item.text,
        "url": item.url,
        "inbox_url": f"{app.config['DESK_PUBLIC_URL']}/notifications",
    }
    env = app.jinja_env  # .html templates are autoescaped, .txt ones are not
    return mailer.build_message(
        settings,
        subject=f"{SUBJECT_PREFIX} {KIND_LABELS[item.kind]}",
        text=env.get_template("mail/notification.txt").render(**context),
        html=env.get_template("mail/notification.html").render(**context),
        now=now,
    )


def run(app: Flask, fencing_token: int, *, now: datetime | None = None) -> int:
    """One tick: mail the pending notifications people want; return how many were sent."""
    settings = mailer.personal_smtp_settings(app)
    if settings is None:
        return 0  # no SMTP: the inbox is the only channel
    now = now or utcnow()
    outgoing = due_mail(app, fencing_token, now=now)
    sent = failures = 0
    for item in outgoing or []:
        with session_scope(write=False, app=app) as session:
            if not lease_is_current(session, fencing_token):
                break  # another scheduler took over: it mails from here on
        to_one = replace(settings, recipients=(item.address,))
        try:
            mailer.send(to_one, _message(app, to_one, item, now))
        except mailer.MailError as error:
            # The error names the server, never the recipient; the mail stays pending.
            log.warning("a notification mail was not sent, retrying next tick: %s", error)
            failures += 1
            if failures >= MAX_FAILURES_PER_TICK:
                break
            continue
        with session_scope(write=True, app=app) as session:
            session.exec(
                sa.update(Notification)
                .where(
                    Notification.id == item.notification_id,
                    Notification.mail_state == MailState.PENDING.value,
                )
                .values(mail_state=MailState.SENT.value, mailed_at=now)
            )
            session.commit()
        sent += 1
    if sent:
        log.info("%d notification mail(s) sent", sent)
    return sent
