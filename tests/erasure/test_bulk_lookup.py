"""Bulk lookup: “which of these people were deleted?” — per person, by fingerprint, audited."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa
from batch_fixtures import *  # noqa: F401,F403

from webapp.db import session_scope
from webapp.erasure import batches, bulk_lookup
from webapp.models import Batch, Subject
from webapp.trail import audit


@pytest.fixture(autouse=True)
def _app_context(app):
    """Reading a list fingerprints it, with the desk's key."""
    with app.app_context():
        yield


@pytest.fixture
def desk_history(app, make_user, upload, complete_batch, make_env):
    """A deleted pair, one in progress, one awaiting approval, one rejected, one elsewhere."""
    officer, reviewer = make_user("officer"), make_user("officer")
    done = upload(officer, "identity\nada@x.org\nbea@x.org\n")
    complete_batch(done)
    sent = upload(officer, "identity\ncid@x.org\n")
    with app.app_context(), session_scope(write=True) as session:
        session.exec(sa.update(Batch).where(Batch.id == sent).values(state="polling"))
        session.exec(sa.update(Subject).where(Subject.batch_id == sent).values(state="submitted"))
        session.commit()
    waiting = upload(officer, "user_id\n42\n")
    rejected = upload(officer, "identity\ndan@x.org\n")
    with app.app_context(), session_scope(write=True) as session:
        batches.reject(session, actor=reviewer, batch_id=rejected, reason="not ours")
    elsewhere = upload(officer, "identity\neve@x.org\n", environment_id=make_env("Second"))
    return {
        "done": done,
        "sent": sent,
        "waiting": waiting,
        "rejected": rejected,
        "elsewhere": elsewhere,
    }


def _answer(app, entries, **options):
    with app.app_context(), session_scope(write=True) as session:
        return bulk_lookup.answer(session, entries, **options)


def _statuses(result) -> list[tuple[int, str]]:
    return [(a.entry.line, a.status) for a in result.answers]


def test_each_person_is_answered(app, desk_history):
    pasted = "ada@x.org\n bea@x.org \ncid@x.org\n\nnobody@x.org\ndan@x.org\nzoë\u200b@x.org\n"
    result = _answer(app, bulk_lookup.read_pasted(pasted, "identity"))
    assert _statuses(result) == [
        (1, "deleted"),
        (2, "deleted"),
        (3, "in_progress"),
        (4, "never_requested"),
        (5, "never_requested"),
        (6, "malformed"),
    ]
    assert [f.batch_id for f in result.answers[0].found] == [desk_history["done"]]
    assert result.answers[0].completed_at is not None
    # Found only in a rejected batch: never requested, and the page says where it was seen.
    assert [f.batch_state for f in result.answers[4].found] == ["rejected"]
    assert "U+200B" in result.answers[5].entry.problem
    assert result.counts == {
        "deleted": 2,
        "in_progress": 1,
        "awaiting_approval": 0,
        "never_requested": 2,
        "malformed": 1,
    }
    assert result.summary == "2 deleted, 1 in progress, 2 never requested, 1 malformed"


def test_user_ids_and_environments(app, desk_history, env_id):
    result = _answer(app, bulk_lookup.read_pasted("42\n0042\nabc\n7\n", "user_id"))
    assert _statuses(result) == [
        (1, "awaiting_approval"),
        (2, "awaiting_approval"),
        (3, "malformed"),
        (4, "never_requested"),
    ]
    assert "digits only" in result.answers[2].entry.problem
    everywhere = _answer(app, bulk_lookup.read_pasted("eve@x.org", "identity"))
    assert _statuses(everywhere) == [(1, "awaiting_approval")]
    here = _answer(app, bulk_lookup.read_pasted("eve@x.org", "identity"), environment_id=env_id)
    assert _statuses(here) == [(1, "never_requested")]


def test_a_csv_file_with_both_columns(app, desk_history):
    data = b"\xef\xbb\xbfemail;user_id;note\r\nada@x.org;;x\r\n;42;\r\n;;\r\nada@x.org;42;\r\n"
    entries = bulk_lookup.read_file(data, max_bytes=1_000_000)
    result = _answer(app, entries)
    assert _statuses(result) == [(1, "deleted"), (2, "awaiting_approval"), (3, "malformed")]
    assert "both user_id and identity" in result.answers[2].entry.problem
    # The same list, written back as the page's hidden "download" form carries it.
    again = bulk_lookup.read_pasted(bulk_lookup.as_text(entries), "identity")
    assert _statuses(_answer(app, again)) == _statuses(result)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"name\nAda\n", "must name the identifier column"),
        (b"identity\n", "no people to look up"),
        (b"identity\nada\x00@x.org\n", "NUL bytes"),
        (b'identity\n"ada@x.org\n', "not valid CSV"),
        ("identity\n" + "p@x.org\n" * 10_001, "10,001 people; the desk looks up at most 10,000"),
    ],
)
def test_unusable_files_are_refused(data, message):
    data = data.encode() if isinstance(data, str) else data
    with pytest.raises(bulk_lookup.BulkLookupRefused, match=message):
        bulk_lookup.read_file(data, max_bytes=1_000_000)


def test_ten_thousand_lines_are_taken_and_one_more_refused():
    lines = [f"person{n}@x.org" for n in range(10_000)]
    assert len(bulk_lookup.read_pasted("\n".join(lines), "identity")) == 10_000
    with pytest.raises(bulk_lookup.BulkLookupRefused, match="10,001 people"):
        bulk_lookup.read_pasted("\n".join([*lines, "one@more.org"]), "identity")
    with pytest.raises(bulk_lookup.BulkLookupRefused, match="Paste at least one"):
        bulk_lookup.read_pasted(" \n\n", "identity")
    with pytest.raises(bulk_lookup.BulkLookupRefused, match="identities or user_ids"):
        bulk_lookup.read_pasted("ada@x.org", "email")


def test_the_search_is_audited_with_counts_and_no_identifier(app, desk_history):
    entries = bulk_lookup.read_pasted("ada@x.org\nnobody@x.org\n" + "x" * 256, "identity")
    _answer(app, entries, actor="auditor@example.org")
    with app.app_context(), session_scope(write=False) as session:
        (entry,) = [
            e for e in audit.iter_entries(session) if e["action"] == "subjects.bulk_looked_up"
        ]
    details = entry["details"]
    assert entry["actor"] == "auditor@example.org"
    assert details["lines"] == 3 and details["people"] == 2
    assert details["counts"]["deleted"] == 1 and details["counts"]["malformed"] == 1
    assert len(details["fingerprints_sha256"]) == 64
    assert "ada@x.org" not in str(entry) and "nobody" not in str(entry)


def test_one_query_per_chunk_not_per_person(app, desk_history):
    lines = "\n".join(f"person{n}@x.org" for n in range(2_500))
    entries = bulk_lookup.read_pasted(lines + "\nada@x.org", "identity")
    statements = []
    with app.app_context(), session_scope(write=True) as session:
        sa.event.listen(
            session.get_bind(), "before_cursor_execute", lambda *a: statements.append(a[2])
        )
        result = bulk_lookup.answer(session, entries)
    selects = [s for s in statements if "FROM subjects" in s]
    assert len(selects) == 3  # 2,501 people in chunks of 1,000
    assert result.counts["deleted"] == 1 and result.counts["never_requested"] == 2_500


def test_the_answer_as_csv(app, desk_history):
    entries = bulk_lookup.read_pasted("=ada@x.org\nada@x.org\n42x", "identity")
    result = _answer(app, entries)
    rows = list(csv.reader(io.StringIO("".join(bulk_lookup.answer_csv(result)))))
    assert rows[0] == [
        "line",
        "kind",
        "identifier",
        "status",
        "batches",
        "completed_at",
        "due_on",
        "problem",
    ]
    assert rows[1][2] == "'=ada@x.org" and rows[1][3] == "never_requested"
    assert rows[2][3] == "deleted" and rows[2][4] == f"{desk_history['done']} complete"
    assert rows[2][5].endswith("+00:00")
    assert rows[3][3] == "never_requested"
