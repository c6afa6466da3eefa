"""Issue 12, finding 13: a rejected batch's status report said "Valid (sent) 3" when nothing was
sent.

A batch's status report (the PDF of a batch that is not complete, and the CSV report) labels
its valid subjects truthfully in every state: a batch that was never sent says so, and why.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa
from batch_fixtures import *  # noqa: F401,F403
from evidence_fixtures import pdf_text

from webapp.db import session_scope
from webapp.erasure import batches
from webapp.evidence import certificates, reports
from webapp.models import Batch, BatchState

THREE_VALID = "identity\nada@example.org\nbob@example.org\ncyd@example.org\nnot valid\x01\n"


def _grid(app, batch_id: int) -> str:
    """The certificate's text, one space between words."""
    with app.app_context(), session_scope(write=False) as session:
        pdf = certificates.issue_batch_certificate(session, batch_id)
    return " ".join(pdf_text(pdf).split())


def _statuses(app, batch_id: int) -> list[str]:
    text = "".join(reports.batch_report(app, batch_id))
    return [row["status"] for row in csv.DictReader(io.StringIO(text))]


def _set_state(app, batch_id: int, state: BatchState) -> None:
    """Put a batch in `state` as its use case would leave it (cancel's own rules are tested in
    tests/security/test_cancel.py)."""
    with app.app_context(), session_scope(write=True) as session:
        session.exec(sa.update(Batch).where(Batch.id == batch_id).values(state=state.value))
        session.commit()


def test_the_finding_a_rejected_batch_says_nothing_was_sent(app, make_user, upload):
    batch_id = upload(make_user("officer"), THREE_VALID)
    with app.app_context(), session_scope(write=True) as session:
        batches.reject(session, actor=make_user("officer"), batch_id=batch_id, reason="wrong list")
    text = _grid(app, batch_id)
    assert "Valid (sent)" not in text
    assert "Valid (not sent: batch rejected)" in text
    assert re.search(r"Rows read Valid \(not sent: batch rejected\) Malformed .* 4 3 1 0 0", text)
    assert "Never sent" in text and "Not sent yet" not in text
    assert _statuses(app, batch_id) == ["not sent: batch rejected"] * 3 + ["skipped"]


@pytest.mark.parametrize(
    ("state", "label", "pending"),
    [
        (BatchState.AWAITING_APPROVAL, "Valid (not sent: awaiting approval)", "Not sent yet"),
        (BatchState.APPROVED, "Valid (not sent yet: approved)", "Not sent yet"),
        (BatchState.CANCELLED, "Valid (not sent: batch cancelled)", "Never sent"),
    ],
)
def test_every_state_before_sending_says_not_sent(app, make_user, upload, state, label, pending):
    batch_id = upload(make_user("officer"), THREE_VALID)
    _set_state(app, batch_id, state)
    text = _grid(app, batch_id)
    assert label in text and "Valid (sent)" not in text
    assert pending in text
    reason = label.removeprefix("Valid (").removesuffix(")")
    assert _statuses(app, batch_id) == [reason] * 3 + ["skipped"]


def test_a_complete_batch_says_sent(app, make_user, upload, complete_batch):
    batch_id = upload(make_user("officer"), THREE_VALID)
    complete_batch(batch_id)
    text = _grid(app, batch_id)
    assert "Valid (sent)" in text and "not sent" not in text
    assert _statuses(app, batch_id) == ["complete"] * 3 + ["skipped"]
