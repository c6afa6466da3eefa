"""The notification outbox over a real loopback SMTP server: prompt, once, as people chose."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from batch_fixtures import *  # noqa: F401,F403
from smtp_fixtures import *  # noqa: F401,F403
from sqlmodel import select

from webapp.accounts import users as accounts
from webapp.db import session_scope
from webapp.erasure import batches
from webapp.jobs.schedule import JOBS
from webapp.lease import acquire_lease
from webapp.models import Notification, NotificationKind, utcnow
from webapp.notifications import mail, preferences

IDENTITIES = ["ada.lovelace@example.com", "grace.hopper@example.org"]
CSV = "identity\r\n" + "".join(f"{identity}\r\n" for identity in IDENTITIES)


@pytest.fixture
def lease(app) -> int:
    with app.app_context(), session_scope(write=True) as session:
        return acquire_lease(session, holder="test", ttl_seconds=600)


@pytest.fixture
def people(make_user) -> dict[str, str]:
    return {
        "uploader": make_user("officer", email="uploader@example.org"),
        "approver": make_user("officer", email="approver@example.org"),
    }


def mail_states(app) -> list[str]:
    with app.app_context(), session_scope(write=False) as session:
        return list(session.exec(select(Notification.mail_state).order_by(Notification.id)).all())


def choose(app, email: str, **choices: bool) -> None:
    with app.app_context(), session_scope(write=True) as session:
        user = accounts.find_user(session, email)
        preferences.update_email_preferences(
            session,
            actor=email,
            user_id=user.id,
            email={NotificationKind(kind): on for kind, on in choices.items()},
        )


def test_the_job_is_registered_to_run_at_least_once_a_minute(app):
    (job,) = [job for job in JOBS if job.id == "notification_mail"]
    assert job.seconds(app) <= 60
    app.config["DESK_NOTIFICATION_MAIL_SECONDS"] = 600
    assert job.seconds(app) == 60


def test_an_approver_is_mailed_within_one_run_and_never_twice(
    app, people, upload, mail_server, alert_settings, lease
):
    alert_settings(mail_server.port)
    batch_id = upload(people["uploader"], CSV)

    assert mail.run(app, lease) == 1
    (received,) = mail_server.received
    assert received.rcpt_tos == [people["approver"]]
    assert received.message["To"] == people["approver"]
    assert received.message["Subject"] == "[Deletion Desk] A batch awaits your approval"
    text = received.body("plain")
    assert f"Batch #{batch_id} awaits your approval" in text
    assert f"https://desk.example.org/batches/{batch_id}" in text
    assert f"Batch #{batch_id}" in received.body("html")
    for identity in IDENTITIES:
        assert identity not in received.message.as_string()
    assert mail_states(app) == ["sent"]

    assert mail.run(app, lease) == 0  # marked sent: not again
    assert len(mail_server.received) == 1


def test_preferences_are_honoured(app, people, upload, mail_server, alert_settings, lease):
    alert_settings(mail_server.port)
    choose(app, people["approver"], batch_awaits_approval=False)
    upload(people["uploader"], CSV)

    assert mail.run(app, lease) == 0
    assert mail_server.received == []
    assert mail_states(app) == ["skipped"]  # the inbox still has it


def test_outcomes_are_mailed_to_the_uploader_by_default_deadlines_only_when_chosen(
    app, people, upload, mail_server, alert_settings, lease
):
    alert_settings(mail_server.port)
    batch_id = upload(people["uploader"], CSV)
    with app.app_context(), session_scope(write=True) as session:
        batches.reject(session, actor=people["approver"], batch_id=batch_id, reason="Wrong list")
        uploader = accounts.find_user(session, people["uploader"]).id
        session.add(
            Notification(
                user_id=uploader,
                kind=NotificationKind.DEADLINE_AT_RISK.value,
                text="Deadlines at risk in your batch",
                batch_id=batch_id,
            )
        )
        session.commit()

    assert mail.run(app, lease) == 2
    subjects = sorted(m.message["Subject"] for m in mail_server.received)
    assert subjects == [
        "[Deletion Desk] A batch awaits your approval",
        "[Deletion Desk] Your batch was rejected",
    ]
    assert "Wrong list" in [m for m in mail_server.received if "rejected" in m.message["Subject"]][
        0
    ].body("plain")
    assert mail_states(app) == ["sent", "sent", "skipped"]


def test_nothing_is_sent_or_marked_while_smtp_is_not_configured(app, people, upload, lease):
    assert not app.config.get("DESK_SMTP_HOST")
    upload(people["uploader"], CSV)

    assert mail.run(app, lease) == 0
    assert mail_states(app) == ["pending"]


def test_smtp_without_alert_recipients_is_enough(
    app, people, upload, mail_server, alert_settings, lease
):
    """Notifications go to people's own addresses: DESK_ALERT_RECIPIENTS is not needed."""
    alert_settings(mail_server.port, DESK_ALERT_RECIPIENTS="")
    assert not app.config["DESK_ALERTS_ENABLED"]
    upload(people["uploader"], CSV)

    assert mail.run(app, lease) == 1


def test_old_news_is_not_mailed_once_smtp_is_configured(
    app, people, upload, mail_server, alert_settings, lease
):
    upload(people["uploader"], CSV)
    alert_settings(mail_server.port)

    assert mail.run(app, lease, now=utcnow() + timedelta(days=2)) == 0
    assert mail_states(app) == ["skipped"]


def test_a_server_that_is_down_leaves_the_mail_pending(
    app, people, upload, alert_settings, lease, caplog
):
    from smtp_fixtures import free_port

    alert_settings(free_port())  # nothing listens there
    upload(people["uploader"], CSV)

    assert mail.run(app, lease) == 0
    assert mail_states(app) == ["pending"]
    assert people["approver"] not in caplog.text


def test_only_the_lease_holder_sends(app, people, upload, mail_server, alert_settings, lease):
    alert_settings(mail_server.port)
    upload(people["uploader"], CSV)

    assert mail.run(app, lease + 1) == 0
    assert mail_server.received == []
    with app.app_context(), session_scope(write=False) as session:
        assert session.exec(select(sa.func.count()).select_from(Notification)).one() == 1
