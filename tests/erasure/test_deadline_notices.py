"""A deadline you own is at risk: the uploader hears once a day per batch, never of others'."""

from __future__ import annotations

from datetime import timedelta

import pytest
from batch_fixtures import *  # noqa: F401,F403
from sqlmodel import select

from webapp.db import session_scope
from webapp.erasure import batches, deadline_notices
from webapp.lease import acquire_lease
from webapp.models import Notification, NotificationKind, utcnow

IDENTITIES = ["ada.lovelace@example.com", "grace.hopper@example.org", "alan.turing@example.net"]
TODAY = utcnow().date()


@pytest.fixture
def lease(app) -> int:
    with app.app_context(), session_scope(write=True) as session:
        return acquire_lease(session, holder="test", ttl_seconds=600)


def deadline_notes(app) -> list[Notification]:
    with app.app_context(), session_scope(write=False) as session:
        return list(
            session.exec(
                select(Notification)
                .where(Notification.kind == NotificationKind.DEADLINE_AT_RISK.value)
                .order_by(Notification.id)
            ).all()
        )


def csv(*identities: str) -> str:
    return "identity\r\n" + "".join(f"{identity}\r\n" for identity in identities)


def test_the_uploader_is_told_once_a_day_per_batch(app, make_user, upload, lease):
    uploader = make_user("officer", email="uploader@example.org")
    make_user("officer", email="other@example.org")
    # Received 40 and 27 days ago: one subject overdue, one due within 7 days.
    at_risk = upload(uploader, csv(IDENTITIES[0]), received_on=TODAY - timedelta(days=40))
    upload(uploader, csv(IDENTITIES[1]), received_on=TODAY - timedelta(days=27))
    upload(uploader, csv(IDENTITIES[2]), received_on=TODAY)  # a month to go: nothing

    assert deadline_notices.scheduled_notices(app, lease, today=TODAY) == 2
    assert deadline_notices.scheduled_notices(app, lease, today=TODAY) == 0  # not spam
    notes = deadline_notes(app)
    assert [n.batch_id for n in notes][0] == at_risk
    assert "1 subject overdue" in notes[0].text
    assert "1 subject due within 7 days" in notes[1].text
    with app.app_context(), session_scope(write=False) as session:
        from webapp.accounts.users import find_user

        assert {n.user_id for n in notes} == {find_user(session, uploader).id}
    for note in notes:
        assert not any(identity in note.text for identity in IDENTITIES)
    assert deadline_notices.scheduled_notices(app, lease, today=TODAY + timedelta(days=1)) == 2


def test_a_withdrawn_batch_and_a_lost_lease_tell_nobody(app, make_user, upload, lease):
    uploader = make_user("officer", email="uploader@example.org")
    second = make_user("officer", email="second@example.org")
    batch_id = upload(uploader, csv(IDENTITIES[0]), received_on=TODAY - timedelta(days=40))

    assert deadline_notices.scheduled_notices(app, lease + 1, today=TODAY) == 0
    with app.app_context(), session_scope(write=True) as session:
        batches.reject(session, actor=second, batch_id=batch_id, reason="Not ours")
    assert deadline_notices.scheduled_notices(app, lease, today=TODAY) == 0
    assert deadline_notes(app) == []
