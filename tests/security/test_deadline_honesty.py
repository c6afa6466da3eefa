"""Issue 12, finding 11: a backdated extension turned a missed deadline into "met" — a subject 32
days overdue, extended with a "told on" date in the past, showed "deadline … (met)" on its
certificate.

The day an extension is recorded is kept; an extension recorded after the original due date
cannot make the deadline met: certificates, receipts and reports say "missed; extended late on
D" (D the recording day). The "told on" date may not be after the day of recording.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from batch_fixtures import *  # noqa: F401,F403
from batch_fixtures import today
from evidence_fixtures import pdf_text
from sqlmodel import select

from webapp.db import session_scope
from webapp.erasure import deadlines
from webapp.evidence import certificates, facts, reports
from webapp.models import Subject


@pytest.fixture
def overdue(app, make_user, upload):
    """(batch id, subject id) of a subject received 63 days ago: its first month ended about
    32 days ago and nothing was done."""
    received = today() - timedelta(days=63)
    batch_id = upload(
        make_user("officer"), f"identity,received_on\nada@example.org,{received.isoformat()}\n"
    )
    with app.app_context(), session_scope(write=False) as session:
        subject = session.exec(select(Subject).where(Subject.batch_id == batch_id)).one()
        assert deadlines.days_left(subject.due_on) <= -30
        return batch_id, subject.id


def _extend(app, subject_id: int, *, told, months: int = 2, today_=None):
    with app.app_context(), session_scope(write=True) as session:
        return deadlines.extend(
            session,
            actor="officer@example.org",
            subject_id=subject_id,
            months=months,
            reason="Complex request",
            subject_informed_on=told,
            today=today_,
        )


def _subject(app, subject_id: int) -> Subject:
    with app.app_context(), session_scope(write=False) as session:
        return session.get(Subject, subject_id)


def _report_deadlines(app, batch_id: int) -> list[str]:
    text = "".join(reports.batch_report(app, batch_id))
    return [row["deadline"] for row in csv.DictReader(io.StringIO(text))]


def test_the_finding_a_backdated_late_extension_is_missed_not_met(
    app, overdue, complete_batch, api_token
):
    batch_id, subject_id = overdue
    received = _subject(app, subject_id).received_on
    _extend(app, subject_id, told=received + timedelta(days=5))  # "told" long ago
    stored = _subject(app, subject_id)
    assert stored.extension_recorded_on == today()
    assert stored.due_on > today()  # the extension itself is kept
    complete_batch(batch_id)  # Heap completes the deletion today, within the extended date
    expected = f"missed; extended late on {today().isoformat()}"
    with app.app_context(), session_scope(write=False) as session:
        assert facts.subject_evidence(session, subject_id).deadline == expected
        batch_facts = facts.batch_evidence(session, batch_id).deadlines
        assert (batch_facts.met, batch_facts.missed) == (0, 1)
        subject_pdf = pdf_text(certificates.issue_subject_certificate(session, subject_id))
        batch_pdf = pdf_text(certificates.issue_batch_certificate(session, batch_id))
    flat = " ".join(subject_pdf.split())
    assert f"({expected})" in flat and "(met)" not in flat
    assert "0 deletion(s) were completed within their" in " ".join(batch_pdf.split())
    assert _report_deadlines(app, batch_id) == [expected]
    headers = {"Authorization": f"Bearer {api_token('auditor')}"}
    body = app.test_client().get(f"/api/v1/subjects/{subject_id}", headers=headers).json
    assert body["extension_recorded_on"] == today().isoformat()


def test_an_open_subject_extended_late_stays_overdue(app, overdue):
    batch_id, subject_id = overdue
    received = _subject(app, subject_id).received_on
    _extend(app, subject_id, told=received + timedelta(days=5))
    expected = f"overdue; extended late on {today().isoformat()}"
    with app.app_context(), session_scope(write=False) as session:
        assert facts.subject_evidence(session, subject_id).deadline == expected
        assert facts.batch_evidence(session, batch_id).deadlines.overdue == 1
    assert _report_deadlines(app, batch_id) == [expected]


def test_an_extension_recorded_within_the_first_month_can_be_met(
    app, make_user, upload, complete_batch
):
    received = today() - timedelta(days=20)
    batch_id = upload(make_user("officer"), f"identity,received_on\nbob@x.org,{received}\n")
    with app.app_context(), session_scope(write=False) as session:
        subject_id = session.exec(select(Subject.id).where(Subject.batch_id == batch_id)).one()
    _extend(app, subject_id, told=today(), months=1)
    complete_batch(batch_id)
    with app.app_context(), session_scope(write=False) as session:
        assert facts.subject_evidence(session, subject_id).deadline == "met"
    assert _report_deadlines(app, batch_id) == ["met"]


def test_a_second_extension_recorded_late_keeps_the_first_late_day(app, overdue):
    _, subject_id = overdue
    received = _subject(app, subject_id).received_on
    first_late = today() - timedelta(days=3)
    _extend(app, subject_id, told=received + timedelta(days=2), months=1, today_=first_late)
    _extend(app, subject_id, told=received + timedelta(days=2), months=1)
    assert _subject(app, subject_id).extension_recorded_on == first_late


def test_the_told_on_date_may_not_be_after_the_day_of_recording(app, overdue, api_token):
    _, subject_id = overdue
    tomorrow = (today() + timedelta(days=1)).isoformat()
    response = app.test_client().post(
        f"/api/v1/subjects/{subject_id}/extend",
        json={"months": 1, "reason": "Complex", "subject_informed_on": tomorrow},
        headers={"Authorization": f"Bearer {api_token('officer')}"},
    )
    assert response.status_code == 409  # refused today, by the desk's clock; not malformed
    assert "cannot be in the future" in response.json["error"]["message"]
    stored = _subject(app, subject_id)
    assert (stored.extension_months, stored.extension_recorded_on) == (0, None)


def test_the_subject_page_says_the_extension_came_late(app, client, login_as, overdue):
    _, subject_id = overdue
    received = _subject(app, subject_id).received_on
    _extend(app, subject_id, told=received + timedelta(days=5))
    login_as("auditor")
    page = " ".join(client.get(f"/subjects/{subject_id}").get_data(as_text=True).split())
    assert re.search(
        rf"recorded on {today().isoformat()}, after the first month ended: the deadline was "
        "missed",
        page,
    )
