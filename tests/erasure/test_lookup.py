"""Lookup: “was this person deleted, when, in which batch?” — by fingerprint only."""

from __future__ import annotations

import html

import pytest
import sqlalchemy as sa
from batch_fixtures import *  # noqa: F401,F403

from webapp.db import session_scope
from webapp.erasure import batches, lookup
from webapp.models import Subject, utcnow


def _lookup(app, kind, value, environment_id=None):
    with app.app_context(), session_scope(write=False) as session:
        return lookup.lookup(session, kind=kind, value=value, environment_id=environment_id)


def test_every_batch_that_held_the_subject(app, make_user, upload, make_env, complete_batch):
    officer = make_user("officer")
    first = upload(officer, "user_id\n17\n")
    complete_batch(first, deletion_request_id="aaaa-1")
    second = upload(officer, "user_id\n0017\n")  # already requested: still part of the story
    other_env = make_env("Other Production")
    third = upload(officer, "user_id\n17\n", environment_id=other_env)
    hits = _lookup(app, "user_id", " 17 ")
    assert [(h.batch.id, h.subject.classification) for h in hits] == [
        (third, "valid"),
        (second, "already_requested"),
        (first, "valid"),
    ]
    done = hits[-1]
    assert done.subject.state == "complete" and done.subject.completed_at is not None
    assert [d.deletion_request_id for d in done.deletion_ids] == ["aaaa-1"]
    only_other = _lookup(app, "user_id", "17", environment_id=other_env)
    assert [h.batch.id for h in only_other] == [third]


def test_identities_match_exactly(app, make_user, upload):
    upload(make_user("officer"), "identity\nAda@Example.com\n")
    assert len(_lookup(app, "identity", "Ada@Example.com")) == 1
    assert _lookup(app, "identity", "ada@example.com") == []


def test_lookup_works_after_the_identifiers_are_purged(app, make_user, upload, complete_batch):
    batch_id = upload(make_user("officer"), "identity\nada@x.org\n")
    complete_batch(batch_id)
    with app.app_context(), session_scope(write=True) as session:
        session.exec(sa.update(Subject).values(identifier_encrypted=None, purged_at=utcnow()))
        session.commit()
    (hit,) = _lookup(app, "identity", "ada@x.org")
    assert hit.subject.identifier_encrypted is None and hit.subject.state == "complete"


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("user_id", "abc", "digits only"),
        ("user_id", str(2**53), "larger than"),
        ("identity", "", "must not be empty"),
        ("identity", "x" * 256, "longer than 255"),
        ("email", "a@b", "identity or a user_id"),
    ],
)
def test_unusable_identifiers_are_refused(app, kind, value, message):
    with pytest.raises(lookup.LookupRefused, match=message):
        _lookup(app, kind, value)


def test_lookup_page_answers_the_question(
    app, client, auth, login_as, make_user, upload, env_id, complete_batch
):
    officer, reviewer = make_user("officer"), make_user("officer")
    done = upload(officer, "identity\nada@x.org\n")
    complete_batch(done, deletion_request_id="dddd-2222")
    pending = upload(officer, "identity\nbob@x.org\n")
    rejected = upload(officer, "identity\ncarl@x.org\n")
    with app.app_context(), session_scope(write=True) as session:
        batches.reject(session, actor=reviewer, batch_id=rejected, reason="not ours")
    login_as("auditor")

    def page(query: str) -> str:
        # POSTed (issue 15): the identifier never goes in a URL.
        fields = dict(pair.split("=", 1) for pair in query.split("&") if pair)
        response = auth.post("/lookup", fields) if fields else client.get("/lookup")
        return response.status_code, html.unescape(response.get_data(as_text=True))

    status, text = page("kind=identity&value=ada@x.org")
    assert status == 200 and "Deleted.</strong> Heap completed the deletion on" in text
    assert "dddd-2222" in text and f"#{done}" in text
    status, text = page(f"kind=identity&value=bob@x.org&environment_id={env_id}")
    assert "Requested, not complete yet.</strong> Batch #" + str(pending) in text
    status, text = page("kind=identity&value=carl@x.org")
    assert "Not deleted.</strong>" in text
    status, text = page("kind=identity&value=nobody@x.org")
    assert "No batch ever held this identity." in text
    status, text = page("kind=user_id&value=12ab")
    assert status == 400 and "cannot be looked up" in text
    status, text = page("")
    assert status == 200 and "Was this person deleted?" in text and "Result" not in text


def test_subject_page_shows_the_request_and_deadline(
    app, client, login_as, make_user, upload, complete_batch
):
    batch_id = upload(make_user("officer"), "identity,received_on\nada@x.org,2024-01-31\n")
    complete_batch(batch_id, deletion_request_id="eeee-3333")
    login_as("auditor")
    with app.app_context(), session_scope(write=False) as session:
        subject_id = session.exec(sa.select(Subject.id)).scalar_one()
    text = html.unescape(client.get(f"/subjects/{subject_id}").get_data(as_text=True))
    assert "ada@x.org" in text and "eeee-3333" in text and "2024-02-29" in text
    assert "Heap has completed this deletion." in text
    assert client.get("/subjects/999").status_code == 404


def test_lookups_are_audited_by_fingerprint_only(app, client, auth, login_as):
    from webapp.db import session_scope
    from webapp.trail import audit as audit_module

    login_as("auditor")
    auth.post("/lookup", {"kind": "identity", "value": "someone@example.org"})
    with app.app_context(), session_scope(write=False) as session:
        entries = [
            e for e in audit_module.iter_entries(session) if e["action"] == "subject.looked_up"
        ]
    assert len(entries) == 1
    assert entries[0]["details"]["found"] == 0
    assert "someone@example.org" not in str(entries[0])
