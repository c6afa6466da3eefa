"""GDPR Art. 12(3) deadlines: month arithmetic, extensions and the at-risk list."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from batch_fixtures import *  # noqa: F401,F403
from sqlmodel import select

from webapp.db import session_scope
from webapp.erasure import deadlines
from webapp.models import Subject
from webapp.trail import audit


@pytest.mark.parametrize(
    ("received", "months", "due"),
    [
        ("2024-01-31", 1, "2024-02-29"),  # leap year: February has 29 days
        ("2023-01-31", 1, "2023-02-28"),
        ("2024-02-29", 1, "2024-03-29"),
        ("2024-03-31", 1, "2024-04-30"),
        ("2024-01-30", 1, "2024-02-29"),
        ("2023-01-29", 1, "2023-02-28"),
        ("2024-05-15", 1, "2024-06-15"),
        ("2023-12-31", 1, "2024-01-31"),  # over the year end
        ("2023-12-31", 2, "2024-02-29"),
        ("2023-12-31", 3, "2024-03-31"),
        ("2024-11-30", 3, "2025-02-28"),
        ("2024-12-01", 1, "2025-01-01"),
        ("2099-12-31", 2, "2100-02-28"),  # 2100 is not a leap year
        ("2000-01-31", 1, "2000-02-29"),  # 2000 is
    ],
)
def test_add_months_ends_on_the_last_day_of_a_shorter_month(received, months, due):
    assert deadlines.add_months(date.fromisoformat(received), months) == date.fromisoformat(due)


@pytest.mark.parametrize(
    ("received", "extension", "due"),
    [
        ("2024-01-31", 0, "2024-02-29"),
        ("2024-01-31", 1, "2024-03-31"),
        ("2024-01-31", 2, "2024-04-30"),
        ("2023-12-31", 2, "2024-03-31"),
        ("2024-02-29", 2, "2024-05-29"),
    ],
)
def test_due_on_counts_the_extension_from_receipt(received, extension, due):
    assert deadlines.due_on(date.fromisoformat(received), extension) == date.fromisoformat(due)


@pytest.mark.parametrize(
    ("days", "expected"),
    [(-1, "overdue"), (0, "due_soon"), (7, "due_soon"), (8, "on_track")],
)
def test_urgency(days, expected):
    today = date(2024, 6, 1)
    assert deadlines.urgency(today + timedelta(days=days), today) == expected


@pytest.fixture
def subject_id(app, make_user, upload):
    """A valid subject received on 2024-01-31 (due 2024-02-29)."""
    officer = make_user("officer")
    batch_id = upload(officer, "identity,received_on\nada@example.com,2024-01-31\n")
    with app.app_context(), session_scope(write=False) as session:
        return session.exec(select(Subject.id).where(Subject.batch_id == batch_id)).one()


def _extend(app, subject_id, today=date(2024, 2, 20), **kw):
    options = {"months": 1, "reason": "Many requests this month", "subject_informed_on": today}
    options.update(kw)
    with app.app_context(), session_scope(write=True) as session:
        return deadlines.extend(
            session, actor="officer@example.org", subject_id=subject_id, today=today, **options
        )


def test_extension_moves_the_deadline_and_is_audited(app, subject_id):
    subject = _extend(app, subject_id, subject_informed_on=date(2024, 2, 10))
    assert subject.due_on == date(2024, 3, 31)
    subject = _extend(
        app, subject_id, today=date(2024, 3, 5), subject_informed_on=date(2024, 2, 29)
    )
    assert (subject.extension_months, subject.due_on) == (2, date(2024, 4, 30))
    with app.app_context(), session_scope(write=False) as session:
        entries = [e for e in audit.iter_entries(session) if e["action"].startswith("subject.")]
    assert [e["details"]["due_on"] for e in entries] == ["2024-03-31", "2024-04-30"]
    assert "ada@example.com" not in str(entries)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"months": 3}, "1 or 2 months"),
        ({"months": 0}, "1 or 2 months"),
        ({"reason": "  "}, "reason"),
        ({"subject_informed_on": None}, "date the person was told"),
        ({"subject_informed_on": date(2024, 3, 1)}, "within the first month, by 2024-02-29"),
        ({"subject_informed_on": date(2024, 3, 11)}, "cannot be in the future"),
        ({"subject_informed_on": date(2024, 1, 30)}, "before the request arrived"),
    ],
)
def test_extension_refusals(app, subject_id, options, message):
    with pytest.raises(deadlines.DeadlineError, match=message):
        _extend(app, subject_id, today=date(2024, 3, 10), **options)
    with app.app_context(), session_scope(write=False) as session:
        subject = session.get(Subject, subject_id)
        assert (subject.extension_months, subject.due_on) == (0, date(2024, 2, 29))


def test_extension_total_is_at_most_two_months(app, subject_id):
    _extend(app, subject_id, months=2)
    with pytest.raises(deadlines.DeadlineError, match="at most 2 months in total"):
        _extend(app, subject_id, months=1)


def test_extension_refused_for_a_row_that_was_not_valid(app, make_user, upload):
    batch_id = upload(make_user("officer"), "user_id\nabc\n1\n")
    with app.app_context(), session_scope(write=False) as session:
        bad = session.exec(
            select(Subject.id).where(Subject.batch_id == batch_id, Subject.row_number == 1)
        ).one()
    with pytest.raises(deadlines.DeadlineError, match="Only valid subjects"):
        _extend(app, bad)


def test_at_risk_lists_overdue_and_due_soon_but_not_withdrawn_batches(
    app, make_user, upload, complete_batch
):
    officer = make_user("officer")
    today = date.today()
    overdue = (today - timedelta(days=40)).isoformat()
    soon = deadlines.add_months(today, -1) + timedelta(days=3)
    later = today - timedelta(days=2)
    upload(
        officer,
        f"identity,received_on\nlate@x.org,{overdue}\nsoon@x.org,{soon}\nok@x.org,{later}\n",
    )
    done = upload(officer, f"identity,received_on\ndone@x.org,{overdue}\n")
    complete_batch(done)
    withdrawn = upload(officer, f"identity,received_on\ngone@x.org,{overdue}\n")
    from webapp.erasure import batches

    with app.app_context(), session_scope(write=True) as session:
        batches.cancel(session, actor=officer, batch_id=withdrawn, reason="sent twice")
    with app.app_context(), session_scope(write=False) as session:
        risk = deadlines.at_risk(session, today=today)
    assert (risk.overdue, risk.due_soon) == (1, 1)
    assert [s.row_number for s in risk.subjects] == [1, 2]
