"""The inbox on the pages: the header count, the list, mark read (CSRF), e-mail preferences."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from batch_fixtures import *  # noqa: F401,F403
from sqlmodel import select

from webapp.db import session_scope
from webapp.models import AuditEntry, Notification

CSV = "identity\r\nada.lovelace@example.com\r\ngrace.hopper@example.org\r\n"


def header_label(html: str) -> str:
    return re.search(r'data-testid="notifications-link"[^>]*aria-label="([^"]+)"', html).group(1)


def test_the_header_counts_unread_on_every_page(client, login_as, make_user, upload):
    login_as("officer")
    assert header_label(client.get("/batches").get_data(as_text=True)) == "Notifications, 0 unread"

    uploader = make_user("officer")
    upload(uploader, CSV)
    upload(uploader, CSV.replace("ada", "ann"))
    upload(uploader, CSV.replace("ada", "amy"))

    page = client.get("/batches").get_data(as_text=True)
    assert header_label(page) == "Notifications, 3 unread"
    assert client.get("/notifications/unread.json").json == {"unread": 3}


def test_the_page_lists_newest_first_with_links_and_marks_read(
    client, auth, login_as, make_user, upload
):
    login_as("officer")
    uploader = make_user("officer")
    first = upload(uploader, CSV)
    second = upload(uploader, CSV.replace("ada", "ann"))

    page = client.get("/notifications").get_data(as_text=True)
    assert page.index(f"Open batch #{second}") < page.index(f"Open batch #{first}")
    assert f'href="/batches/{first}"' in page
    assert "ada.lovelace" not in page

    with client.application.app_context(), session_scope(write=False) as session:
        newest = session.exec(select(Notification.id).order_by(Notification.id.desc())).first()
    response = auth.post(f"/notifications/{newest}/read", form_page="/notifications")
    assert response.status_code == 302
    assert client.get("/notifications/unread.json").json == {"unread": 1}

    response = auth.post("/notifications/read-all", form_page="/notifications")
    assert response.status_code == 302
    page = client.get("/notifications").get_data(as_text=True)
    assert "1 notification marked read." in page
    assert header_label(page) == "Notifications, 0 unread"


def test_posts_without_csrf_change_nothing(client, login_as, make_user, upload):
    login_as("officer")
    upload(make_user("officer"), CSV)

    assert client.post("/notifications/read-all").status_code == 400
    assert client.post("/notifications/1/read").status_code == 400
    assert client.post("/notifications/preferences", data={}).status_code == 400
    assert client.get("/notifications/unread.json").json == {"unread": 1}


def test_someone_elses_notification_is_a_404(client, auth, login_as, make_user, upload):
    upload(make_user("officer"), CSV)  # notifies the admin below, not the signed-in auditor
    make_user("admin")
    login_as("auditor")
    assert auth.post("/notifications/1/read", form_page="/notifications").status_code == 404


def test_the_empty_state(client, login_as):
    login_as("auditor")
    page = client.get("/notifications").get_data(as_text=True)
    assert 'data-testid="no-notifications"' in page
    assert "Mark all read" not in page


def test_email_preferences_default_on_for_approvals_and_outcomes_and_are_audited(
    client, auth, login_as
):
    login_as("officer")
    page = client.get("/notifications").get_data(as_text=True)
    checked = set(re.findall(r'<input checked id="([a-z_]+)"[^>]*type="checkbox"', page))
    assert "batch_awaits_approval" in checked
    assert "batch_completed" in checked
    assert "deadline_at_risk" not in checked

    response = auth.post(
        "/notifications/preferences",
        {"batch_awaits_approval": "y", "deadline_at_risk": "y"},
        form_page="/notifications",
    )
    assert response.status_code == 302
    with client.application.app_context(), session_scope(write=False) as session:
        entry = session.exec(
            select(AuditEntry).where(AuditEntry.action == "notification.preferences_changed")
        ).one()
    details = json.loads(entry.details)
    assert details["email"]["deadline_at_risk"] is True
    assert details["email"]["batch_completed"] is False
    assert "batch_awaits_approval" not in details["email"]  # unchanged
    page = client.get("/notifications").get_data(as_text=True)
    assert "E-mail preferences saved." in page


def test_the_headers_refresh_does_not_keep_a_session_alive(client, login_as):
    """An open tab asking for the count must not defeat the idle timeout."""
    import sqlalchemy as sa

    from webapp.models import LoginSession, utcnow

    login_as("officer")
    earlier = utcnow() - timedelta(minutes=10)

    def last_seen(reset: bool = False):
        with client.application.app_context(), session_scope(write=True) as session:
            if reset:
                session.exec(sa.update(LoginSession).values(last_seen_at=earlier))
                session.commit()
            return session.exec(select(LoginSession.last_seen_at)).one()

    last_seen(reset=True)
    background = {"X-Desk-Background": "1"}
    assert client.get("/notifications/unread.json", headers=background).status_code == 200
    assert last_seen() == earlier
    assert client.get("/notifications/unread.json").status_code == 200
    assert last_seen() > earlier
