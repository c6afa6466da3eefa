"""Fixing rows in the preview (issue 15): exclude a valid row, correct a malformed one."""

from __future__ import annotations

import json
import re

import pytest
from batch_fixtures import *  # noqa: F401,F403
from sqlmodel import select
from workflow_factories import audit_entries

from webapp.crypto import decrypt, subject_fingerprint
from webapp.db import session_scope
from webapp.erasure import batches, row_fixes
from webapp.erasure.manifest import manifest_sha256
from webapp.models import Batch, BatchState, Subject

CSV = "identity\nada@example.org\nbob@example.org\nnull\n"


def _batch(app, batch_id: int) -> Batch:
    with app.app_context(), session_scope(write=False) as session:
        batch = session.get(Batch, batch_id)
        session.expunge(batch)
        return batch


def _row(app, batch_id: int, number: int) -> Subject:
    with app.app_context(), session_scope(write=False) as session:
        subject = session.exec(
            select(Subject).where(Subject.batch_id == batch_id, Subject.row_number == number)
        ).one()
        session.expunge(subject)
        return subject


def _exclude(app, actor, batch_id, row, reason="The person withdrew the request"):
    with app.app_context(), session_scope(write=True) as session:
        return row_fixes.exclude_row(
            session, actor=actor, batch_id=batch_id, row_number=row, reason=reason
        )


def _correct(app, actor, batch_id, row, value, kind="identity"):
    with app.app_context(), session_scope(write=True) as session:
        return row_fixes.correct_row(
            session, actor=actor, batch_id=batch_id, row_number=row, kind=kind, value=value
        )


def _fingerprint(app, kind: str, value: str) -> str:
    with app.app_context():
        return subject_fingerprint(kind, value)


def _manifest(app, *identities: str) -> str:
    return manifest_sha256(_fingerprint(app, "identity", value) for value in identities)


def test_excluding_a_row_takes_it_out_of_the_manifest_and_audits_it(app, make_user, upload):
    officer = make_user("officer")
    batch_id = upload(officer, CSV)
    before = _batch(app, batch_id)

    _exclude(app, officer, batch_id, 2)

    batch = _batch(app, batch_id)
    subject = _row(app, batch_id, 2)
    assert (subject.classification, subject.state) == ("excluded", "skipped")
    assert subject.problem == "excluded in the preview: The person withdrew the request"
    assert (batch.valid_count, batch.excluded_count, batch.malformed_count) == (1, 1, 1)
    assert (batch.manifest_count, batch.manifest_sha256) == (1, _manifest(app, "ada@example.org"))
    assert batch.manifest_sha256 != before.manifest_sha256
    (entry,) = with_app(app, "batch.row_excluded")
    assert (entry["actor"], entry["target_type"], entry["target_id"]) == (
        officer,
        "batch",
        str(batch_id),
    )
    assert entry["details"] == {
        "row": 2,
        "from": "valid",
        "to": "excluded",
        "reason_length": len("The person withdrew the request"),
        "counts": {
            "rows": 3,
            "valid": 1,
            "malformed": 1,
            "duplicate": 0,
            "already_requested": 0,
            "excluded": 1,
        },
        "manifest": {
            "before": {"count": 2, "sha256": before.manifest_sha256},
            "after": {"count": 1, "sha256": batch.manifest_sha256},
        },
    }
    # Neither the identifier, its fingerprint nor the reason's words enter the trail.
    text = json.dumps(entry)
    assert "bob@example.org" not in text and "withdrew" not in text
    assert _fingerprint(app, "identity", "bob@example.org") not in text


def test_correcting_a_malformed_row_makes_it_valid_and_changes_the_manifest(app, make_user, upload):
    officer = make_user("officer")
    batch_id = upload(
        officer, "identity,received_on,reference\nada@example.org,,\nnull,2025-01-02,T-9\n"
    )

    fix = _correct(app, officer, batch_id, 2, "  carl@example.org ")

    assert fix.classification == "valid"
    subject = _row(app, batch_id, 2)
    assert (subject.classification, subject.state, subject.problem) == ("valid", "pending", None)
    assert (subject.kind, subject.fingerprint) == (
        "identity",
        _fingerprint(app, "identity", "carl@example.org"),
    )
    with app.app_context():
        assert decrypt(subject.identifier_encrypted) == "carl@example.org"  # encrypted at rest
    assert (subject.received_on.isoformat(), subject.reference) == ("2025-01-02", "T-9")
    assert subject.warning.startswith("corrected in the preview")
    batch = _batch(app, batch_id)
    assert (batch.valid_count, batch.malformed_count) == (2, 0)
    assert batch.manifest_sha256 == _manifest(app, "ada@example.org", "carl@example.org")
    (entry,) = with_app(app, "batch.row_corrected")
    assert entry["details"]["row"] == 2
    assert (entry["details"]["from"], entry["details"]["to"]) == ("malformed", "valid")
    assert entry["details"]["kind"] == "identity"
    assert entry["details"]["manifest"]["after"] == {"count": 2, "sha256": batch.manifest_sha256}
    assert "carl" not in json.dumps(entry)
    assert subject.fingerprint not in json.dumps(entry)


def test_a_correction_is_checked_by_the_same_rules_as_a_row(app, make_user, upload):
    officer = make_user("officer")
    batch_id = upload(officer, CSV)
    before = _batch(app, batch_id)
    for value, kind, message in [
        ("undefined", "identity", "placeholder"),
        ("", "identity", "Type the corrected identity"),
        ("ada\u200b@example.org", "identity", "U+200B"),
        ("12x", "user_id", "user_id"),
        ("ada@example.org", "email", "Choose user_id or identity"),
    ]:
        with pytest.raises(batches.BatchError, match=re.escape(message)):
            _correct(app, officer, batch_id, 3, value, kind=kind)
    assert _batch(app, batch_id).manifest_sha256 == before.manifest_sha256
    assert _row(app, batch_id, 3).classification == "malformed"
    assert with_app(app, "batch.row_corrected") == []


def test_a_correction_to_someone_already_listed_is_a_duplicate(app, make_user, upload):
    officer = make_user("officer")
    earlier = upload(officer, "user_id\n77\n")
    batch_id = upload(officer, "user_id,identity\n,ada@example.org\n,null\n,null\n")
    manifest = _batch(app, batch_id).manifest_sha256

    fix = _correct(app, officer, batch_id, 2, "ada@example.org")
    assert (fix.classification, fix.problem) == ("duplicate", "the same identity as row 1")
    fix = _correct(app, officer, batch_id, 3, "77", kind="user_id")
    assert (fix.classification, fix.problem) == (
        "already_requested",
        f"already requested in batch {earlier}",
    )
    batch = _batch(app, batch_id)
    assert (batch.duplicate_count, batch.already_requested_count, batch.malformed_count) == (
        1,
        1,
        0,
    )
    assert batch.manifest_sha256 == manifest  # nobody new would be sent


def test_a_correction_cannot_bring_back_an_excluded_person(app, make_user, upload):
    officer = make_user("officer")
    batch_id = upload(officer, CSV)
    _exclude(app, officer, batch_id, 2)
    fix = _correct(app, officer, batch_id, 3, "bob@example.org")
    assert (fix.classification, fix.problem) == ("duplicate", "the same identity as row 2")
    assert _batch(app, batch_id).manifest_sha256 == _manifest(app, "ada@example.org")


@pytest.mark.parametrize(
    ("row", "reason", "message"),
    [
        (3, "typo", "Row 3 is malformed: it is never sent, so there is nothing to exclude"),
        (9, "typo", "Batch {batch_id} has no row 9."),
        (1, "  ", "Give the reason for excluding row 1"),
        (1, "x" * 301, "Give the reason for excluding row 1 (1 to 300 characters)"),
    ],
)
def test_exclusion_refusals_change_nothing(
    app, make_user, upload, table_counts, row, reason, message
):
    officer = make_user("officer")
    batch_id = upload(officer, CSV)
    before = table_counts()
    with pytest.raises(batches.BatchError, match=re.escape(message.format(batch_id=batch_id))):
        _exclude(app, officer, batch_id, row, reason)
    assert table_counts() == before


def test_correcting_a_valid_row_is_refused(app, make_user, upload):
    officer = make_user("officer")
    batch_id = upload(officer, CSV)
    with pytest.raises(batches.WrongState, match="Row 1 is not malformed"):
        _correct(app, officer, batch_id, 1, "eve@example.org")


def test_only_the_uploader_or_an_admin_fixes_rows(app, make_user, upload):
    uploader, colleague, admin = make_user("officer"), make_user("officer"), make_user("admin")
    auditor = make_user("auditor")
    batch_id = upload(uploader, CSV)
    for who in (colleague, auditor):
        with pytest.raises(batches.NotAllowed):
            _exclude(app, who, batch_id, 1)
        with pytest.raises(batches.NotAllowed):
            _correct(app, who, batch_id, 3, "eve@example.org")
    _exclude(app, admin, batch_id, 1)
    assert _row(app, batch_id, 1).classification == "excluded"


def test_rows_of_an_approved_batch_cannot_change(app, make_user, upload):
    uploader, approver = make_user("officer"), make_user("officer")
    batch_id = upload(uploader, CSV)
    with app.app_context(), session_scope(write=True) as session:
        batches.approve(session, actor=approver, batch_id=batch_id)
    with pytest.raises(batches.WrongState, match="only a batch awaiting approval"):
        _exclude(app, uploader, batch_id, 1)
    with pytest.raises(batches.WrongState, match="only a batch awaiting approval"):
        _correct(app, uploader, batch_id, 3, "eve@example.org")
    assert _batch(app, batch_id).state == BatchState.APPROVED


def test_an_approval_of_the_earlier_manifest_no_longer_holds(app, make_user, upload):
    uploader, approver = make_user("officer"), make_user("officer")
    batch_id = upload(uploader, CSV)
    seen = _batch(app, batch_id).manifest_sha256
    _exclude(app, uploader, batch_id, 2)
    with (
        app.app_context(),
        session_scope(write=True) as session,
        pytest.raises(batches.WrongState, match="changed since you looked"),
    ):
        batches.approve(session, actor=approver, batch_id=batch_id, manifest_sha256=seen)
    assert _batch(app, batch_id).state == BatchState.AWAITING_APPROVAL


def with_app(app, action):
    return audit_entries(app, action)
