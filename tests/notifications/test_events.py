"""Who is told what (issue 15): approvers, uploaders, authors — and never a data subject's name.

Through the real services: uploads, approvals, rejections and the jobs against the sandbox, so
each hook in erasure/ and corrections/ is exercised where it lives.
"""

from __future__ import annotations

from datetime import timedelta

import corrections_helpers
import pytest
from batch_fixtures import *  # noqa: F401,F403
from conftest import PASSWORD
from sqlmodel import select

from webapp import tool_policy
from webapp.accounts import users as accounts
from webapp.corrections import service as corrections
from webapp.db import session_scope
from webapp.erasure import batches, lifecycle
from webapp.erasure.polling import poll_due
from webapp.erasure.submission import submit_due
from webapp.models import (
    Batch,
    BatchState,
    ChunkState,
    Environment,
    HeapRequest,
    Notification,
    utcnow,
)

IDENTITIES = ["ada.lovelace@example.com", "grace.hopper@example.org", "4711-user"]
# Two valid subjects, and a duplicate of the first (not sent).
CSV = (
    "identity\r\n"
    + "".join(f"{identity}\r\n" for identity in IDENTITIES[:2])
    + f"{IDENTITIES[0]}\r\n"
)


def user_id(app, email: str) -> int:
    with app.app_context(), session_scope(write=False) as session:
        return accounts.find_user(session, email).id


def inbox(app, email: str) -> list[Notification]:
    with app.app_context(), session_scope(write=False) as session:
        return list(
            session.exec(
                select(Notification)
                .where(Notification.user_id == accounts.find_user(session, email).id)
                .order_by(Notification.id)
            ).all()
        )


def all_texts(app) -> list[str]:
    with app.app_context(), session_scope(write=False) as session:
        return list(session.exec(select(Notification.text)).all())


def assert_no_identifier(app) -> None:
    texts = all_texts(app)
    assert texts, "the test produced no notification to check"
    for text in texts:
        for identity in IDENTITIES:
            assert identity.lower() not in text.lower(), text


@pytest.fixture
def people(make_user) -> dict[str, str]:
    return {
        "uploader": make_user("officer", email="uploader@example.org"),
        "officer": make_user("officer", email="second@example.org"),
        "admin": make_user("admin", email="admin@example.org"),
        "auditor": make_user("auditor", email="auditor@example.org"),
    }


@pytest.fixture
def sandbox_env(make_env, sandbox) -> int:
    return make_env(
        "Sandbox production", base_url=sandbox.url, app_id=sandbox.app_id, api_key=sandbox.api_key
    )


def test_an_upload_tells_every_eligible_approver_and_nobody_else(app, people, upload):
    batch_id = upload(people["uploader"], CSV)

    for who in ("officer", "admin"):
        (note,) = inbox(app, people[who])
        assert (note.kind, note.batch_id, note.read_at) == ("batch_awaits_approval", batch_id, None)
        assert (
            note.text
            == f"Batch #{batch_id} awaits your approval: 2 subjects to delete in Main Production."
        )
    assert inbox(app, people["uploader"]) == []  # not the uploader
    assert inbox(app, people["auditor"]) == []  # auditors cannot approve
    assert_no_identifier(app)


def test_four_eyes_refused_accounts_and_disabled_ones_are_not_told(app, people, upload):
    boss = people["admin"]
    with app.app_context(), session_scope(write=True) as session:
        creator = accounts.find_user(session, boss).id
        accounts.create_user(
            session,
            actor=boss,
            email="created@example.org",
            password=PASSWORD,
            role="officer",
            created_by=creator,
        )
        gone = accounts.create_user(
            session, actor=boss, email="gone@example.org", password=PASSWORD, role="officer"
        )
        gone.is_active = False
        session.commit()

    upload("created@example.org", CSV)  # the boss created the uploader's account

    assert inbox(app, boss) == []
    assert inbox(app, "gone@example.org") == []
    assert [n.kind for n in inbox(app, people["officer"])] == ["batch_awaits_approval"]


def test_a_rejection_tells_the_uploader_the_reason(app, people, upload):
    batch_id = upload(people["uploader"], CSV)
    with app.app_context(), session_scope(write=True) as session:
        batches.reject(
            session,
            actor=people["officer"],
            batch_id=batch_id,
            reason="Ticket DSR-9 is a duplicate",
        )

    (note,) = inbox(app, people["uploader"])
    assert note.kind == "batch_rejected"
    assert note.text == f"Your batch #{batch_id} was rejected: Ticket DSR-9 is a duplicate"
    assert_no_identifier(app)


def test_completion_tells_the_uploader_and_no_one_else(app, people, upload, sandbox_env):
    batch_id = upload(people["uploader"], CSV, environment_id=sandbox_env)
    with app.app_context(), session_scope(write=True) as session:
        batches.approve(session, actor=people["officer"], batch_id=batch_id)
    assert submit_due(app) == 1
    assert poll_due(app, now=utcnow() + timedelta(days=1)) == 1

    (note,) = inbox(app, people["uploader"])
    assert note.kind == "batch_completed"
    assert f"#{batch_id} is complete: Heap deleted 2 subjects" in note.text
    assert [n.kind for n in inbox(app, people["officer"])] == ["batch_awaits_approval"]
    assert_no_identifier(app)


def test_a_failed_batch_tells_its_uploader(app, people, upload):
    batch_id = upload(people["uploader"], CSV)
    now = utcnow()
    with app.app_context(), session_scope(write=True) as session:
        batch = session.get(Batch, batch_id)
        batch.state = BatchState.SUBMITTING.value
        session.add(
            HeapRequest(
                batch_id=batch_id,
                chunk_index=1,
                subject_count=2,
                payload_sha256="0" * 64,
                state=ChunkState.FAILED.value,
            )
        )
        session.flush()
        lifecycle.settle_batch(session, lifecycle.lock_batch(session, batch_id), now=now)
        session.commit()

    (note,) = inbox(app, people["uploader"])
    assert note.kind == "batch_failed"
    assert f"Your batch #{batch_id} failed" in note.text


def test_a_batch_returned_for_approval_tells_the_approvers_again(app, people, upload):
    batch_id = upload(people["uploader"], CSV)
    with app.app_context(), session_scope(write=True) as session:
        batches.approve(session, actor=people["officer"], batch_id=batch_id)
        batch = lifecycle.lock_batch(session, batch_id)
        batch.approved_manifest_sha256 = "f" * 64  # what was approved is no longer the set
        assert lifecycle.return_for_approval(session, batch)
        session.commit()

    notes = inbox(app, people["admin"])
    assert [n.kind for n in notes] == ["batch_awaits_approval"] * 2
    assert "needs your approval again" in notes[-1].text


@pytest.fixture
def heap_env(app, sandbox) -> int:
    return corrections_helpers.make_env(app, sandbox, name="Corrections sandbox")


def test_a_correction_awaiting_approval_tells_eligible_officers(app, heap_env, people):
    with app.app_context(), session_scope(write=True) as session:
        env = session.get(Environment, heap_env)
        tool_policy.update_policy(
            session, actor="admin@example.org", env=env, changes={"corrections_four_eyes_above": 0}
        )
        correction = corrections.send(
            session,
            actor=people["uploader"],
            environment_id=heap_env,
            family="user-properties",
            data={"users": [{"identity": IDENTITIES[0], "properties": {"plan": "gold"}}]},
        )

    for who in ("officer", "admin"):
        (note,) = inbox(app, people[who])
        assert (note.kind, note.correction_id) == ("correction_awaits_approval", correction.id)
        assert f"Correction #{correction.id} awaits your approval" in note.text
    assert inbox(app, people["uploader"]) == []
    assert inbox(app, people["auditor"]) == []
    assert_no_identifier(app)
