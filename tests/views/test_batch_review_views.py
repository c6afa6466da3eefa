"""The batch page before approval (issue 15): row fixes, and the approval's confirmation."""

from __future__ import annotations

import html
import re

import pytest
from batch_fixtures import *  # noqa: F401,F403
from sqlmodel import select
from workflow_factories import audit_entries

from webapp.db import session_scope
from webapp.erasure import batches
from webapp.models import Batch, Subject

CSV = "identity,received_on\nada@example.org,31/01/2025\nbob@example.org,\nnull,\n"
BIG = "user_id\n" + "\n".join(str(n) for n in range(1, 1002)) + "\n"


def _page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return html.unescape(response.get_data(as_text=True))


def _state(app, batch_id: int) -> tuple:
    with app.app_context(), session_scope(write=False) as session:
        batch = session.get(Batch, batch_id)
        return batch.state, batch.manifest_sha256, batch.valid_count


def _classification(app, batch_id: int, row: int) -> str:
    with app.app_context(), session_scope(write=False) as session:
        return session.exec(
            select(Subject.classification).where(
                Subject.batch_id == batch_id, Subject.row_number == row
            )
        ).one()


def test_the_uploader_excludes_and_corrects_rows_on_the_page(app, client, auth, make_user, upload):
    uploader = make_user("officer")
    batch_id = upload(uploader, CSV)
    auth.login(uploader)
    page = _page(client, f"/batches/{batch_id}")
    # The bad date is flagged on a row that will be sent, not a problem that blocks it.
    assert "received_on “31/01/2025” is not a date in the form YYYY-MM-DD" in page
    assert 'data-testid="exclude-1"' in page and 'data-testid="correct-3"' in page
    _, manifest, _ = _state(app, batch_id)

    response = auth.post(
        f"/batches/{batch_id}/rows/2/exclude",
        {"reason": "Asked us to stop"},
        form_page=f"/batches/{batch_id}",
    )
    assert response.status_code == 302 and response.location.endswith("#row-2")
    shown = _page(client, response.location)
    assert "Row 2 excluded: it will not be sent. The manifest changed" in shown
    assert "excluded in the preview: Asked us to stop" in shown
    assert 'data-testid="count-excluded">1<' in shown

    response = auth.post(
        f"/batches/{batch_id}/rows/3/correct",
        {"kind": "identity", "value": "carl@example.org"},
        form_page=f"/batches/{batch_id}",
    )
    assert "Row 3 corrected: it will be sent once the batch is approved." in _page(
        client, response.location
    )
    state, now, valid = _state(app, batch_id)
    assert (state, valid) == ("awaiting_approval", 2) and now != manifest
    assert [
        e["details"]["row"] for e in audit_entries(app) if e["action"].startswith("batch.row_")
    ] == [2, 3]


@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        (
            "rows/2/exclude",
            {"reason": ""},
            "Give the reason for excluding the row; nothing changed.",
        ),
        ("rows/2/exclude", {"reason": "x" * 301}, "The reason may be at most 300 characters"),
        ("rows/3/exclude", {"reason": "typo"}, "Row 3 is malformed: it is never sent"),
        ("rows/3/correct", {"kind": "identity", "value": ""}, "Type the corrected value"),
        ("rows/3/correct", {"kind": "email", "value": "a@b.c"}, "Not a valid choice"),
        ("rows/3/correct", {"kind": "identity", "value": "null"}, "is a placeholder"),
        (
            "rows/3/correct",
            {"kind": "user_id", "value": "1e9"},
            "The corrected user_id is not usable",
        ),
        ("rows/1/correct", {"kind": "identity", "value": "x@y.z"}, "Row 1 is not malformed"),
    ],
)
def test_bad_row_fixes_say_why_and_change_nothing(
    app, client, auth, make_user, upload, table_counts, path, data, message
):
    uploader = make_user("officer")
    batch_id = upload(uploader, CSV)
    auth.login(uploader)
    before = table_counts()
    response = auth.post(f"/batches/{batch_id}/{path}", data, form_page=f"/batches/{batch_id}")
    assert response.status_code == 302
    assert message in _page(client, response.location)
    assert table_counts() == before


def test_row_fixes_need_csrf_the_uploader_and_an_open_batch(app, client, auth, make_user, upload):
    uploader, other = make_user("officer"), make_user("officer")
    batch_id = upload(uploader, CSV)
    auth.login(other)
    page = _page(client, f"/batches/{batch_id}")
    assert 'data-testid="exclude-1"' not in page  # only the uploader or an admin is offered it
    response = auth.post(
        f"/batches/{batch_id}/rows/1/exclude", {"reason": "no"}, form_page=f"/batches/{batch_id}"
    )
    assert "Only the officer who uploaded this batch, or an admin" in _page(
        client, response.location
    )
    auth.logout()
    auth.login(uploader)
    response = client.post(f"/batches/{batch_id}/rows/1/exclude", data={"reason": "no"})
    assert response.status_code == 400  # no CSRF token
    assert _classification(app, batch_id, 1) == "valid"
    response = auth.post(
        f"/batches/{batch_id}/rows/99/exclude", {"reason": "x"}, form_page=f"/batches/{batch_id}"
    )
    assert response.status_code == 404
    with app.app_context(), session_scope(write=True) as session:
        batches.approve(session, actor=other, batch_id=batch_id)
    assert 'data-testid="exclude-1"' not in _page(client, f"/batches/{batch_id}")
    response = auth.post(
        f"/batches/{batch_id}/rows/1/exclude", {"reason": "late"}, form_page=f"/batches/{batch_id}"
    )
    assert "only a batch awaiting approval can have its rows changed" in _page(
        client, response.location
    )


def _confirmation(client, batch_id: int) -> tuple[str, dict]:
    page = _page(client, f"/batches/{batch_id}/approve")
    fields = dict(
        re.findall(r'name="(sha256|manifest_sha256)" type="hidden" value="([^"]*)"', page)
    )
    return page, fields


def test_approval_confirms_the_counts_and_the_manifest(app, client, auth, make_user, upload):
    uploader, approver = make_user("officer"), make_user("officer")
    batch_id = upload(uploader, CSV + "bob@example.org,\n")
    auth.login(approver)
    batch_page = _page(client, f"/batches/{batch_id}")
    assert "Approve and queue for submission" not in batch_page  # one keypress is not enough
    assert f'href="/batches/{batch_id}/approve"' in batch_page
    page, fields = _confirmation(client, batch_id)
    _, manifest, _ = _state(app, batch_id)
    assert fields["manifest_sha256"] == manifest
    assert f'data-testid="confirm-manifest-sha256">{manifest}<' in page
    assert 'data-testid="confirm-to-send">2<' in page
    assert 'data-testid="confirm-malformed">1<' in page
    assert 'data-testid="confirm-duplicate">1<' in page
    assert 'data-testid="confirm-excluded">0<' in page
    assert "I checked the preview" not in page  # only above 1,000

    # A page posted without the hash it showed approves nothing.
    response = auth.post(f"/batches/{batch_id}/approve", form_page=f"/batches/{batch_id}/approve")
    assert "Approve from the confirmation page" in _page(client, response.location)
    assert _state(app, batch_id)[0] == "awaiting_approval"
    # The uploader fixes a row meanwhile: the hash the approver saw no longer holds (409).
    auth.logout()
    auth.login(uploader)
    auth.post(
        f"/batches/{batch_id}/rows/2/exclude",
        {"reason": "withdrawn"},
        form_page=f"/batches/{batch_id}",
    )
    auth.logout()
    auth.login(approver)
    response = auth.post(
        f"/batches/{batch_id}/approve", fields, form_page=f"/batches/{batch_id}/approve"
    )
    assert "changed since you looked" in _page(client, response.location)
    assert _state(app, batch_id)[0] == "awaiting_approval"
    page, fields = _confirmation(client, batch_id)
    assert (
        'data-testid="confirm-to-send">1<' in page and 'data-testid="confirm-excluded">1<' in page
    )
    response = auth.post(
        f"/batches/{batch_id}/approve", fields, form_page=f"/batches/{batch_id}/approve"
    )
    assert f"Batch {batch_id} approved" in _page(client, response.location)


def test_a_batch_above_1000_needs_the_tick(app, client, auth, make_user, upload):
    uploader, approver = make_user("officer"), make_user("officer")
    batch_id = upload(uploader, BIG)
    auth.login(approver)
    page, fields = _confirmation(client, batch_id)
    assert "I checked the preview" in page
    assert re.search(r'<input[^>]*id="checked_preview"[^>]*required', page)
    response = auth.post(
        f"/batches/{batch_id}/approve", fields, form_page=f"/batches/{batch_id}/approve"
    )
    assert "This batch sends 1,001 subjects: confirm that you checked the preview" in _page(
        client, response.location
    )
    assert _state(app, batch_id)[0] == "awaiting_approval"
    response = auth.post(
        f"/batches/{batch_id}/approve",
        {**fields, "checked_preview": "y"},
        form_page=f"/batches/{batch_id}/approve",
    )
    assert f"Batch {batch_id} approved" in _page(client, response.location)


def test_the_confirmation_of_a_batch_no_longer_waiting_goes_back(
    app, client, auth, make_user, upload
):
    uploader, approver = make_user("officer"), make_user("officer")
    batch_id = upload(uploader, CSV)
    with app.app_context(), session_scope(write=True) as session:
        batches.approve(session, actor=approver, batch_id=batch_id)
    auth.login(approver)
    response = client.get(f"/batches/{batch_id}/approve")
    assert response.status_code == 302 and response.location.endswith(f"/batches/{batch_id}")
    assert client.get("/batches/999/approve").status_code == 404
    auth.logout()
    auth.login(make_user("auditor"))
    assert client.get(f"/batches/{batch_id}/approve").status_code == 403
