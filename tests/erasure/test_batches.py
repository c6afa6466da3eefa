"""Batches: refusals that store nothing, classification across batches, four-eyes, pages."""

from __future__ import annotations

import csv
import html
import io
import re
import sys
import types

import pytest
import sqlalchemy as sa
from batch_fixtures import *  # noqa: F401,F403
from conftest import AuthActions
from sqlmodel import select

from webapp.crypto import decrypt, subject_fingerprint
from webapp.db import session_scope
from webapp.erasure import batches
from webapp.models import Batch, HeapRequest, Subject
from webapp.trail import audit

# ≥ 20 uploads that must be refused as a whole, each with its own message.
REFUSED = [
    (b"", "The file is empty."),
    (b"\r\n \r\n", "The file is empty."),
    (b"\xef\xbb\xbf", "The file is empty."),
    (b"identity\n", "header line but no subjects"),
    (b"identity\r\n\r\n\r\n", "header line but no subjects"),
    (b"name,phone\nAda,123\n", "must name the identifier column"),
    (b"received_on,reference\n2025-01-01,T-1\n", "must name the identifier column"),
    (b"ada@example.com\nbob@example.com\n", "must name the identifier column"),
    (b"user_id,userid\n1,2\n", "names the user_id column twice"),
    (b"identity,email\na,b\n", "names the identity column twice"),
    (b"PK\x03\x04\x14\x00\x06\x00", "spreadsheet workbook"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "spreadsheet workbook"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL bytes"),
    (b"identity\nada\x00@example.com\n", "NUL bytes"),
    ("identity\nada@example.com\n".encode("utf-16"), "NUL bytes"),
    ("identity\nJosé@example.com\n".encode("latin-1"), "not UTF-8 text"),
    (b"identity\n\xff\xfe\xfd\n", "not UTF-8 text"),
    ("identity\n" + "\n".join(f"u{i}@x.org" for i in range(10_001)), "more than 10,000"),
    ("user_id\n" + "\n".join(str(i) for i in range(10_050)), "more than 10,000"),
    (b"identity\n" + b"a" * 310_000, "The file is 303 KB; the desk accepts at most 293 KB."),
    (b'identity\n"' + b"x" * 140_000 + b'"\n', "not valid CSV"),
]


@pytest.mark.parametrize(("data", "message"), REFUSED)
def test_refused_uploads_store_nothing(app, make_user, env_id, table_counts, data, message):
    app.config["DESK_UPLOAD_MAX_BYTES"] = 300_000
    officer = make_user("officer")
    before = table_counts()
    data = data.encode() if isinstance(data, str) else data
    with (
        app.app_context(),
        session_scope(write=True) as session,
        pytest.raises(batches.BatchError, match=re.escape(message)),
    ):
        batches.create_batch(session, actor=officer, environment_id=env_id, data=data)
    assert table_counts() == before


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"environment_id": None}, "Choose the Heap environment"),
        ({"environment_id": 999}, "Choose the Heap environment"),
        ({"reference": "r" * 256}, "reference must be at most 255"),
        ({"data": None}, "Choose a CSV file or paste a list"),
        ({"pasted": "ada@x.org", "paste_kind": "email"}, "identities or user_ids"),
    ],
)
def test_refused_requests_store_nothing(app, make_user, env_id, table_counts, options, message):
    officer = make_user("officer")
    before = table_counts()
    kwargs = {"environment_id": env_id, "data": b"identity\na@x.org\n"} | options
    with (
        app.app_context(),
        session_scope(write=True) as session,
        pytest.raises(batches.BatchError, match=message),
    ):
        batches.create_batch(session, actor=officer, **kwargs)
    assert table_counts() == before


def test_only_main_production_takes_deletions(app, make_user, make_env, table_counts):
    staging, officer = make_env("Staging", main_production=False), make_user("officer")
    before = table_counts()
    with (
        app.app_context(),
        session_scope(write=True) as session,
        pytest.raises(batches.BatchError, match="not the Main Production environment"),
    ):
        batches.create_batch(session, actor=officer, environment_id=staging, data=b"user_id\n1\n")
    assert table_counts() == before


def test_auditors_cannot_upload_even_through_the_service(app, make_user, env_id, table_counts):
    auditor = make_user("auditor")
    before = table_counts()
    with (
        app.app_context(),
        session_scope(write=True) as session,
        pytest.raises(batches.NotAllowed),
    ):
        batches.create_batch(session, actor=auditor, environment_id=env_id, data=b"user_id\n1\n")
    assert table_counts() == before


def _subjects(app, batch_id) -> list[Subject]:
    with app.app_context(), session_scope(write=False) as session:
        query = select(Subject).where(Subject.batch_id == batch_id).order_by(Subject.row_number)
        return list(session.exec(query).all())


def test_upload_is_stored_encrypted_with_fingerprints_and_one_audit_entry(app, make_user, upload):
    officer = make_user("officer")
    text = "identity,received_on\nAda@Example.com,2024-01-31\nbad\x01one,\n"
    batch_id = upload(officer, text, reference="TICKET-7")
    with app.app_context(), session_scope(write=False) as session:
        batch = session.get(Batch, batch_id)
        entries = [e for e in audit.iter_entries(session) if e["action"] == "batch.uploaded"]
        subjects = _subjects(app, batch_id)
        stored = [decrypt(s.identifier_encrypted) for s in subjects]
        fingerprint = subject_fingerprint("identity", "Ada@Example.com")
    assert (batch.rows_total, batch.valid_count, batch.malformed_count) == (2, 1, 1)
    assert (batch.state, batch.filename, batch.reference) == (
        "awaiting_approval",
        "list.csv",
        "TICKET-7",
    )
    assert "Ada@Example.com" not in subjects[0].identifier_encrypted
    assert stored == ["Ada@Example.com", "bad\x01one"]
    assert subjects[0].fingerprint == fingerprint
    assert [s.state for s in subjects] == ["pending", "skipped"]
    assert str(subjects[0].due_on) == "2024-02-29"
    assert len(entries) == 1
    details = entries[0]["details"]
    assert details["sha256"] == batch.file_sha256
    assert details["counts"] == {
        "rows": 2,
        "valid": 1,
        "malformed": 1,
        "duplicate": 0,
        "already_requested": 0,
    }
    assert "Ada@Example.com" not in str(entries) and "bad" not in str(details)


def test_already_requested_across_batches_of_the_same_environment_only(
    app, make_user, upload, make_env
):
    officer = make_user("officer")
    first = upload(officer, "user_id,identity\n7,\n,ada@x.org\n")
    second = upload(officer, "user_id,identity\n007,\n,ADA@x.org\n,bob@x.org\n")
    other_env = upload(officer, "user_id\n7\n", environment_id=make_env("Other Production"))
    rows = _subjects(app, second)
    assert [r.classification for r in rows] == ["already_requested", "valid", "valid"]
    assert rows[0].problem == f"already requested in batch {first}"
    assert rows[0].state == "skipped"
    assert [r.classification for r in _subjects(app, other_env)] == ["valid"]


def test_withdrawn_batches_do_not_count_as_requested(app, make_user, upload):
    officer, reviewer = make_user("officer"), make_user("officer")
    rejected = upload(officer, "user_id\n1\n")
    cancelled = upload(officer, "user_id\n2\n")
    with app.app_context(), session_scope(write=True) as session:
        batches.reject(session, actor=reviewer, batch_id=rejected, reason="wrong list")
        batches.cancel(session, actor=officer, batch_id=cancelled, reason="wrong file")
    again = upload(officer, "user_id\n1\n2\n")
    assert [r.classification for r in _subjects(app, again)] == ["valid", "valid"]


def test_already_requested_people_are_sent_when_the_earlier_batch_is_withdrawn(
    app, make_user, upload
):
    """No deletion is lost when the batch that covered a person is rejected after the upload."""
    from webapp.erasure.lifecycle import start_batch
    from webapp.models import utcnow

    uploader, reviewer = make_user("officer"), make_user("officer")
    approved = upload(uploader, "user_id,identity\n,kept@x.org\n")
    _approve(app, reviewer, approved)
    first = upload(uploader, "user_id,identity\n,x@x.org\n")
    second = upload(uploader, "user_id,identity\n,x@x.org\n,y@x.org\n,kept@x.org\n")
    assert [r.classification for r in _subjects(app, second)] == [
        "already_requested",
        "valid",
        "already_requested",
    ]
    with app.app_context(), session_scope(write=True) as session:
        batches.reject(session, actor=reviewer, batch_id=first, reason="wrong list")
    _approve(app, reviewer, second)  # approves {y@}: the manifest of the upload
    with app.app_context(), session_scope(write=True) as session:
        assert start_batch(session, approved, now=utcnow(), size=10)
        # x@ is held by no other batch any more: taken back, which changes what would be sent,
        # so nothing is sent and the batch needs a new approval.
        assert not start_batch(session, second, now=utcnow(), size=10)
        assert session.get(Batch, second).state == "awaiting_approval"
    _approve(app, reviewer, second)
    with app.app_context(), session_scope(write=True) as session:
        assert start_batch(session, second, now=utcnow(), size=10)
    rows = _subjects(app, second)
    # kept@ is in an approved batch: still skipped.
    assert [(r.classification, r.heap_request_id is not None) for r in rows] == [
        ("valid", True),
        ("valid", True),
        ("already_requested", False),
    ]
    assert "withdrawn" in rows[0].warning


def _approve(app, actor, batch_id, **kw):
    with app.app_context(), session_scope(write=True) as session:
        return batches.approve(session, actor=actor, batch_id=batch_id, **kw)


def test_four_eyes_in_the_service(app, make_user, upload):
    uploader, approver = make_user("officer"), make_user("admin")
    batch_id = upload(uploader, "user_id\n1\n")
    with pytest.raises(batches.SelfApproval, match="four-eyes"):
        _approve(app, uploader, batch_id)
    with pytest.raises(batches.NotAllowed):
        _approve(app, make_user("auditor"), batch_id)
    with pytest.raises(batches.WrongState, match="SHA-256 you confirmed"):
        _approve(app, approver, batch_id, sha256="0" * 64)
    batch = _approve(app, approver, batch_id)
    assert batch.state == "approved"
    with pytest.raises(batches.WrongState, match="only a batch awaiting approval"):
        _approve(app, make_user("officer"), batch_id)
    with app.app_context(), session_scope(write=False) as session:
        stored = session.get(Batch, batch_id)
        actions = [e["action"] for e in audit.iter_entries(session)]
    assert stored.approved_by is not None and stored.approved_at is not None
    assert actions.count("batch.approved") == 1


def test_a_batch_with_nothing_valid_cannot_be_approved(app, make_user, upload):
    batch_id = upload(make_user("officer"), "user_id\nabc\n")
    with pytest.raises(batches.WrongState, match="no valid subject"):
        _approve(app, make_user("officer"), batch_id)


def test_reject_needs_a_reason_and_another_person(app, make_user, upload):
    uploader, reviewer = make_user("officer"), make_user("officer")
    batch_id = upload(uploader, "user_id\n1\n")
    with app.app_context(), session_scope(write=True) as session:
        with pytest.raises(batches.BatchError, match="reason"):
            batches.reject(session, actor=reviewer, batch_id=batch_id, reason="  ")
        with pytest.raises(batches.WrongState, match="cancel it instead"):
            batches.reject(session, actor=uploader, batch_id=batch_id, reason="oops")
        batch = batches.reject(session, actor=reviewer, batch_id=batch_id, reason="Wrong list")
    assert (batch.state, batch.rejection_reason) == ("rejected", "Wrong list")


@pytest.mark.parametrize("state", ["submitting", "polling", "complete", "rejected"])
def test_cancel_only_before_submission(app, make_user, upload, state):
    officer = make_user("officer")
    batch_id = upload(officer, "user_id\n1\n")
    with app.app_context(), session_scope(write=True) as session:
        session.get(Batch, batch_id).state = state
        session.commit()
        with pytest.raises(batches.WrongState, match="cannot|can be cancelled"):
            batches.cancel(session, actor=officer, batch_id=batch_id, reason="wrong file")


def test_cancel_after_approval_by_an_admin_only(app, make_user, upload):
    uploader, approver, admin = make_user("officer"), make_user("officer"), make_user("admin")
    batch_id = upload(uploader, "user_id\n1\n")
    _approve(app, approver, batch_id)
    with app.app_context(), session_scope(write=True) as session:
        for officer in (uploader, approver):
            with pytest.raises(batches.NotAllowed, match="only an admin"):
                batches.cancel(session, actor=officer, batch_id=batch_id, reason="not needed")
        batch = batches.cancel(session, actor=admin, batch_id=batch_id, reason="not needed")
    assert (batch.state, batch.cancel_reason) == ("cancelled", "not needed")


def test_retry_only_for_failed_or_waiting_batches(app, make_user, upload, monkeypatch):
    officer = make_user("officer")
    batch_id = upload(officer, "user_id\n1\n")
    with (
        app.app_context(),
        session_scope(write=True) as session,
        pytest.raises(batches.WrongState, match="only a batch failed or waiting to retry"),
    ):
        batches.retry(session, actor=officer, batch_id=batch_id)
    calls = []

    def retry_failed(session, *, actor, batch_id):
        calls.append((actor, batch_id))
        session.get(Batch, batch_id).state = "approved"
        session.commit()

    import webapp.erasure

    fake = types.SimpleNamespace(retry_failed=retry_failed, SubmissionError=ValueError)
    monkeypatch.setitem(sys.modules, "webapp.erasure.submission", fake)
    monkeypatch.setattr(webapp.erasure, "submission", fake, raising=False)
    with app.app_context(), session_scope(write=True) as session:
        session.get(Batch, batch_id).state = "failed"
        session.commit()
        assert batches.retry(session, actor=officer, batch_id=batch_id).state == "approved"
    assert calls == [(officer, batch_id)]


# --- pages -----------------------------------------------------------------------------


def _page(client, path) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return html.unescape(response.get_data(as_text=True))


def test_upload_page_stores_a_file_and_shows_the_preview(app, client, auth, login_as, env_id):
    login_as("officer")
    data = {
        "environment_id": str(env_id),
        "file": (io.BytesIO(b"identity;received_on\nada@x.org;2025-01-02\nbad\x01;\n"), "l.csv"),
        "paste_kind": "identity",
    }
    response = auth.post("/batches/new", data, content_type="multipart/form-data")
    assert response.status_code == 302
    page = _page(client, response.location)
    assert "Awaiting approval — nothing has been sent to Heap" in page
    assert '"identity": "ada@x.org"' in page  # the preview of the Heap body
    assert "/api/public/v0/user_deletion" in page
    assert "identity contains control characters" in page
    assert "You uploaded this batch" in page and "Approve and queue" not in page


def test_upload_page_refusal_stores_nothing(app, client, auth, login_as, env_id, table_counts):
    login_as("officer")
    before = table_counts()
    data = {"environment_id": str(env_id), "file": (io.BytesIO(b"name\nAda\n"), "l.csv")}
    response = auth.post("/batches/new", data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "Nothing was stored. The first line must name the identifier column" in (
        response.get_data(as_text=True)
    )
    assert table_counts() == before


def test_upload_page_paste_with_kind(app, client, auth, login_as, env_id):
    login_as("officer")
    data = {"environment_id": str(env_id), "pasted": "12345\n67890\n", "paste_kind": "user_id"}
    response = auth.post("/batches/new", data)
    assert response.status_code == 302
    page = _page(client, response.location)
    assert '"user_id": 12345' in page and "pasted list" in page


def test_upload_page_needs_exactly_one_source(app, client, auth, login_as, env_id, table_counts):
    login_as("officer")
    before = table_counts()
    response = auth.post("/batches/new", {"environment_id": str(env_id), "paste_kind": "identity"})
    assert "Choose a CSV file or paste a list." in response.get_data(as_text=True)
    assert table_counts() == before


def test_four_eyes_in_the_pages(app, client, auth, make_user, upload):
    uploader, approver = make_user("officer"), make_user("officer")
    batch_id = upload(uploader, "user_id\n1\n")
    auth.login(uploader)
    page = _page(client, f"/batches/{batch_id}")
    assert 'data-testid="self-approval-note"' in page
    manifest = re.search(r'data-testid="manifest-sha256">([0-9a-f]{64})<', page).group(1)
    response = auth.post(
        f"/batches/{batch_id}/approve",
        {"manifest_sha256": manifest},
        form_page=f"/batches/{batch_id}",
    )
    assert "cannot approve it" in _page(client, response.location)
    auth.logout()
    auth.login(approver)
    # The batch page links to a confirmation that carries the hashes the approver saw.
    page = _page(client, f"/batches/{batch_id}/approve")
    sha = re.search(r'name="sha256" type="hidden" value="([0-9a-f]{64})"', page).group(1)
    response = auth.post(
        f"/batches/{batch_id}/approve",
        {"sha256": sha, "manifest_sha256": manifest},
        form_page=f"/batches/{batch_id}/approve",
    )
    page = _page(client, response.location)
    assert f"Batch {batch_id} approved" in page
    assert 'data-refresh-seconds="10"' in page  # follows Heap's progress


def test_reject_and_cancel_from_the_page(app, client, auth, make_user, upload):
    uploader, reviewer = make_user("officer"), make_user("officer")
    first, second = upload(uploader, "user_id\n1\n"), upload(uploader, "user_id\n2\n")
    auth.login(reviewer)
    page_path = f"/batches/{first}"
    response = auth.post(f"/batches/{first}/reject", {"reason": ""}, form_page=page_path)
    assert "Give the reason." in _page(client, response.location)
    response = auth.post(f"/batches/{first}/reject", {"reason": "Not ours"}, form_page=page_path)
    assert "Reason: Not ours" in _page(client, response.location)
    response = auth.post(f"/batches/{second}/cancel", {"reason": "x"}, form_page=page_path)
    assert "Only the officer who uploaded this batch" in _page(client, response.location)
    auth.logout()
    auth.login(uploader)
    response = auth.post(
        f"/batches/{second}/cancel", {"reason": "Sent twice"}, form_page=f"/batches/{second}"
    )
    page = _page(client, response.location)
    assert "Cancelled</strong> by" in page and "Reason: Sent twice" in page


def test_auditor_and_anonymous_cannot_act(app, client, auth, make_user, upload, env_id):
    batch_id = upload(make_user("officer"), "user_id\n1\n")
    assert client.get("/batches").status_code == 302
    assert client.get("/batches/new").location.startswith("/login")
    auth.login(make_user("auditor"))
    assert client.get("/batches/new").status_code == 403
    page = _page(client, f"/batches/{batch_id}")
    assert "Officers and admins approve batches." in page and "Cancel batch" not in page
    token = auth.csrf(f"/batches/{batch_id}")
    response = client.post(f"/batches/{batch_id}/approve", data={"csrf_token": token})
    assert response.status_code == 403
    with app.app_context(), session_scope(write=False) as session:
        assert session.get(Batch, batch_id).state == "awaiting_approval"


def test_batch_list_filters_and_progress(
    app, client, login_as, make_user, upload, make_env, complete_batch
):
    officer = make_user("officer")
    done = upload(officer, "user_id\n1\n2\n")
    complete_batch(done)
    other_env = make_env("Second Production")
    waiting = upload(officer, "user_id\n3\n", environment_id=other_env)
    login_as("auditor")
    page = _page(client, "/batches")
    assert f"#{done}" in page and f"#{waiting}" in page
    assert '<progress class="meter" value="2" max="2"' in page and "2 of 2 complete" in page
    page = _page(client, "/batches?state=complete")
    assert f"#{done}" in page and f"#{waiting}" not in page
    page = _page(client, f"/batches?environment_id={other_env}")
    assert f"#{waiting}" in page and f"#{done}</strong>" not in page
    assert "No batch matches these filters" in _page(client, "/batches?state=failed")


def test_batch_page_search_pagination_and_heap_requests(
    app, client, login_as, make_user, upload, complete_batch
):
    rows = "\n".join(f"user{i}@x.org" for i in range(1, 121))
    batch_id = upload(make_user("officer"), f"identity\n{rows}\nUser7@x.org\n")
    complete_batch(batch_id, deletion_request_id="5f0c-aaaa-bbbb")
    login_as("auditor")
    page = _page(client, f"/batches/{batch_id}")
    assert "Page 1 of 3" in page and "user50@x.org" in page and "user51@x.org" not in page
    assert "5f0c-aaaa-bbbb" in page and "121 of 121 complete" in page
    assert "data-refresh-seconds" not in page  # complete: nothing to follow
    page = _page(client, f"/batches/{batch_id}?page=3")
    assert "user101@x.org" in page
    # Find is POSTed (issue 15): tests/views/test_search_pages.py checks it keeps out of URLs.
    auth = AuthActions(client)

    def find(text: str) -> str:
        return html.unescape(auth.post(f"/batches/{batch_id}", {"q": text}).get_data(as_text=True))

    page = find("User7@x.org")
    assert "User7@x.org" in page and "user7@x.org</td>" not in page and "user8@x.org" not in page
    page = find("120")
    assert "user120@x.org" in page and "user12@x.org" not in page
    assert "No row of this batch matches" in find("nobody")


def test_problems_download_neutralises_formulas(app, client, login_as, make_user, upload):
    batch_id = upload(make_user("officer"), "user_id\n=1+2\n@SUM(A1)\n5\n5\n")
    login_as("auditor")
    response = client.get(f"/batches/{batch_id}/problems.csv")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["row", "classification", "problem", "value_as_uploaded"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "4"]
    assert rows[1][3] == "'=1+2" and rows[2][3] == "'@SUM(A1)"
    assert rows[3][2] == "the same user_id as row 3"


def test_dashboard_shows_my_approvals_failures_and_deadlines(app, client, auth, make_user, upload):
    me, colleague = make_user("officer"), make_user("officer")
    mine = upload(me, "user_id\n1\n")
    theirs = upload(colleague, "identity,received_on\nlate@x.org,2020-01-01\n")
    failed = upload(colleague, "user_id\n9\n")
    with app.app_context(), session_scope(write=True) as session:
        batch = session.get(Batch, failed)
        batch.state, batch.last_error = "failed", "Heap said 400: users[0] is invalid"
        session.add(
            HeapRequest(
                batch_id=theirs,
                chunk_index=0,
                subject_count=1,
                payload_sha256="0" * 64,
                state="accepted",
                stale=True,
            )
        )
        session.commit()
    auth.login(me)
    page = _page(client, "/dashboard")
    awaiting = page.split('id="awaiting"')[1].split('id="at-risk"')[0]
    assert f"#{theirs}" in awaiting and f"#{mine}<" not in awaiting
    assert 'data-testid="failures-banner"' in page and "Heap said 400" in page
    assert "1 Heap request pending for unusually long" in page
    at_risk = page.split('data-testid="at-risk"')[1]
    assert "2020-02-01" in at_risk and "overdue" in at_risk


def test_dashboard_for_an_auditor_has_no_approval_list(app, client, login_as):
    login_as("auditor")
    page = _page(client, "/dashboard")
    assert "Awaiting your approval" not in page
    assert "No deletion is overdue or due within 7 days." in page


def test_subject_page_extends_the_deadline(app, client, auth, make_user, upload):
    officer = make_user("officer")
    batch_id = upload(officer, "identity\nada@x.org\n")
    with app.app_context(), session_scope(write=False) as session:
        subject = session.exec(select(Subject).where(Subject.batch_id == batch_id)).one()
    auth.login(officer)
    path = f"/subjects/{subject.id}"
    received = subject.received_on.isoformat()
    response = auth.post(
        f"{path}/extend",
        {"months": "2", "reason": "Complex request", "subject_informed_on": received},
        form_page=path,
    )
    page = _page(client, response.location)
    from webapp.erasure.deadlines import due_on

    assert f"Deadline extended to {due_on(subject.received_on, 2).isoformat()}" in page
    assert "extended by the maximum of two months" in page
    with app.app_context(), session_scope(write=False) as session:
        assert (
            session.exec(
                select(sa.func.count()).select_from(Subject).where(Subject.extension_months == 2)
            ).one()
            == 1
        )


def test_upload_page_names_the_real_size_of_a_file_over_the_cap(
    app, client, auth, login_as, env_id, table_counts
):
    app.config["DESK_UPLOAD_MAX_BYTES"] = 2048
    login_as("officer")
    before = table_counts()
    body = b"user_id\n" + b"1234567\n" * 400  # 3,208 bytes
    data = {"environment_id": str(env_id), "file": (io.BytesIO(body), "big.csv")}
    response = auth.post("/batches/new", data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "The file is 3 KB; the desk accepts at most 2 KB." in response.get_data(as_text=True)
    assert table_counts() == before


def test_a_batch_already_sent_in_part_cannot_be_cancelled(app, make_user, upload):
    """A retried batch is `approved` again, but Heap already has part of it."""
    from webapp.erasure.lifecycle import start_batch
    from webapp.models import Batch, utcnow

    uploader, reviewer, admin = make_user("officer"), make_user("officer"), make_user("admin")
    batch_id = upload(uploader, "user_id\n1\n2\n")
    _approve(app, reviewer, batch_id)
    with app.app_context(), session_scope(write=True) as session:
        assert start_batch(session, batch_id, now=utcnow(), size=1)
        session.get(Batch, batch_id).state = "approved"  # as submission.retry_failed leaves it
        session.commit()
        with pytest.raises(batches.WrongState, match="already \\(partly\\) sent"):
            batches.cancel(session, actor=admin, batch_id=batch_id, reason="stop it")
