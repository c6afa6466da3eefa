"""Four-eyes for corrections (issue 14): above the policy's limit a second officer approves.

Against the Heap sandbox: a correction above the environment's `corrections_four_eyes_above`
is stored with its exact bodies and waits; nothing reaches Heap until a second officer, under
the same cross-account rules as batches, approves it — and then exactly the stored bodies go.
"""

from __future__ import annotations

import json

import pytest
from conftest import PASSWORD
from corrections_helpers import *  # noqa: F401,F403
from corrections_helpers import audit_details, deleted_subject, sandbox_data

from webapp import tool_policy
from webapp.accounts import users as accounts
from webapp.corrections import approval
from webapp.corrections import service as corrections
from webapp.corrections.plans import CorrectionInputError
from webapp.db import session_scope
from webapp.models import Correction, Environment

LIMIT = 2


def set_policy(app, env_id: int, **changes) -> None:
    with app.app_context(), session_scope(write=True) as session:
        env = session.get(Environment, env_id)
        tool_policy.update_policy(session, actor="admin@example.org", env=env, changes=changes)


@pytest.fixture
def guarded_env(app, heap_env) -> int:
    """The sandbox environment, with four-eyes above LIMIT items."""
    set_policy(app, heap_env, corrections_four_eyes_above=LIMIT)
    return heap_env


@pytest.fixture
def author(make_user) -> str:
    return make_user("officer", email="author@example.org")


@pytest.fixture
def approver(make_user) -> str:
    return make_user("officer", email="approver@example.org")


def users_body(count: int, plan: str = "platinum-tier") -> dict:
    return {
        "users": [
            {"identity": f"person{n}@example.org", "properties": {"plan": plan}}
            for n in range(count)
        ]
    }


def request(app, actor: str, env_id: int, data: dict, family="user-properties", **options):
    with app.app_context(), session_scope(write=True) as session:
        return corrections.send(
            session, actor=actor, environment_id=env_id, family=family, data=data, **options
        )


def approve(app, actor: str, correction_id: int) -> Correction:
    with app.app_context(), session_scope(write=True) as session:
        return approval.approve(session, actor=actor, correction_id=correction_id)


def reject(app, actor: str, correction_id: int, reason: str = "wrong plan") -> Correction:
    with app.app_context(), session_scope(write=True) as session:
        return approval.reject(session, actor=actor, correction_id=correction_id, reason=reason)


def stored(app, correction_id: int) -> tuple[Correction, list[dict]]:
    with app.app_context(), session_scope(write=False) as session:
        correction, calls = corrections.get_correction(session, correction_id)
        return correction, [corrections.call_body(call) for call in calls]


def heap_users(sandbox) -> dict:
    return {user["identity"]: user for user in sandbox_data(sandbox).get("users", [])}


def user_id(app, email: str) -> int:
    with app.app_context(), session_scope(write=False) as session:
        return accounts.find_user(session, email).id


# ----- requesting -------------------------------------------------------------------------------
def test_a_correction_above_the_limit_waits_and_heap_receives_nothing(
    app, sandbox, guarded_env, author
):
    correction = request(app, author, guarded_env, users_body(LIMIT + 1))

    assert correction.state == "awaiting_approval"
    assert correction.approval_required is True
    assert correction.author_id == user_id(app, author)
    assert sandbox.state.request_paths() == []
    _, bodies = stored(app, correction.id)
    assert bodies == [{"app_id": sandbox.app_id, **users_body(LIMIT + 1)}]
    [(action, details)] = [
        (a, d) for a, d in audit_details(app) if a == "correction.approval_requested"
    ]
    assert details["items"] == LIMIT + 1 and details["subject_count"] == LIMIT + 1
    text = json.dumps(details)
    assert "person0@example.org" not in text and "platinum" not in text
    assert not [
        a for a, _ in audit_details(app) if a in ("correction.requested", "correction.sent")
    ]


def test_at_the_limit_a_correction_is_sent_at_once(app, sandbox, guarded_env, author):
    correction = request(app, author, guarded_env, users_body(LIMIT))

    assert correction.state == "succeeded"
    assert correction.approval_required is False
    assert correction.author_id == user_id(app, author)
    assert set(heap_users(sandbox)) == {"person0@example.org", "person1@example.org"}


def test_zero_means_every_correction_waits(app, sandbox, heap_env, author):
    set_policy(app, heap_env, corrections_four_eyes_above=0)
    data = {"user_id": "123", "identity": "ann@example.org"}
    correction = request(app, author, heap_env, data, family="identify")
    assert correction.state == "awaiting_approval"
    assert sandbox.state.request_paths() == []


def test_the_guard_and_warnings_are_answered_before_approval_is_requested(
    app, sandbox, guarded_env, author
):
    deleted_subject(app, guarded_env, "identity", "person1@example.org")
    with pytest.raises(CorrectionInputError, match="deleted or is deleting"):
        request(app, author, guarded_env, users_body(LIMIT + 1))
    correction = request(
        app, author, guarded_env, users_body(LIMIT + 1), override_reason="ticket 7 says so"
    )
    assert correction.state == "awaiting_approval"
    assert correction.override_reason == "ticket 7 says so"


# ----- approving --------------------------------------------------------------------------------
def test_a_second_officer_approves_and_exactly_the_stored_bodies_are_sent(
    app, sandbox, guarded_env, author, approver
):
    correction = request(app, author, guarded_env, users_body(LIMIT + 1))
    _, bodies = stored(app, correction.id)

    done = approve(app, approver, correction.id)

    assert done.state == "succeeded"
    assert done.decided_by == approver and done.decided_at is not None
    posts = [e for e in sandbox_data_requests(sandbox) if e["path"].endswith("add_user_properties")]
    assert [post["body"] for post in posts] == bodies
    assert {u: heap_users(sandbox)[u]["properties"] for u in heap_users(sandbox)} == {
        f"person{n}@example.org": {"plan": "platinum-tier"} for n in range(LIMIT + 1)
    }
    actions = [a for a, _ in audit_details(app)]
    assert actions == [
        "correction.approval_requested",
        "correction.approved",
        "correction.sent",
    ]


def sandbox_data_requests(sandbox) -> list[dict]:
    return sandbox.state.snapshot()["requests"]


def test_the_author_cannot_approve(app, sandbox, guarded_env, author):
    correction = request(app, author, guarded_env, users_body(LIMIT + 1))

    with pytest.raises(approval.ApprovalRefused, match="You are the author of this correction"):
        approve(app, author, correction.id)

    assert stored(app, correction.id)[0].state == "awaiting_approval"
    assert sandbox.state.request_paths() == []
    refused = [d for a, d in audit_details(app, "four_eyes.") if a == "four_eyes.refused"]
    assert refused == [
        {"rule": "uploader", "approver_id": user_id(app, author), "author_id": user_id(app, author)}
    ]


@pytest.mark.parametrize("direction", ["created_by_author", "creator_of_author"])
def test_an_account_the_author_created_or_that_created_the_author_cannot_approve(
    app, sandbox, heap_env, make_user, direction
):
    set_policy(app, heap_env, corrections_four_eyes_above=LIMIT)
    boss = make_user("admin", email="boss@example.org")
    with app.app_context(), session_scope(write=True) as session:
        accounts.create_user(
            session,
            actor=boss,
            email="second@example.org",
            password=PASSWORD,
            role="officer",
            created_by=accounts.find_user(session, boss).id,
        )
        session.commit()
    author, approver = (
        (boss, "second@example.org")
        if direction == "created_by_author"
        else ("second@example.org", boss)
    )
    correction = request(app, author, heap_env, users_body(LIMIT + 1))

    with pytest.raises(approval.ApprovalRefused, match="four-eyes needs a second person"):
        approve(app, approver, correction.id)

    assert stored(app, correction.id)[0].state == "awaiting_approval"
    assert sandbox.state.request_paths() == []
    rules = [d["rule"] for a, d in audit_details(app, "four_eyes.") if a == "four_eyes.refused"]
    assert rules == ["creator" if direction == "created_by_author" else "created"]


def test_an_auditor_cannot_approve(app, sandbox, guarded_env, author, make_user):
    correction = request(app, author, guarded_env, users_body(LIMIT + 1))
    with pytest.raises(approval.ApprovalRefused, match="Only officers and admins"):
        approve(app, make_user("auditor"), correction.id)
    assert sandbox.state.request_paths() == []


@pytest.mark.parametrize("first", ["rejected", "succeeded"])
def test_approving_a_rejected_or_sent_correction_is_refused(
    app, sandbox, guarded_env, author, approver, make_user, first
):
    correction = request(app, author, guarded_env, users_body(LIMIT + 1))
    if first == "rejected":
        reject(app, approver, correction.id)
    else:
        approve(app, approver, correction.id)
    sent_before = sandbox.state.request_paths()

    with pytest.raises(approval.WrongState, match=f"is {first.replace('succeeded', 'sent')}"):
        approve(app, make_user("officer"), correction.id)

    assert sandbox.state.request_paths() == sent_before
    assert stored(app, correction.id)[0].state == first


def test_approval_is_refused_once_the_policy_disables_the_operation(
    app, sandbox, guarded_env, author, approver
):
    correction = request(app, author, guarded_env, users_body(LIMIT + 1))
    set_policy(app, guarded_env, operations={"user_properties": False})

    with pytest.raises(corrections.OperationDisabled, match="disables user properties"):
        approve(app, approver, correction.id)

    assert stored(app, correction.id)[0].state == "awaiting_approval"
    assert sandbox.state.request_paths() == []


def test_approval_is_refused_once_a_key_it_writes_is_forbidden(
    app, sandbox, guarded_env, author, approver
):
    correction = request(app, author, guarded_env, users_body(LIMIT + 1))
    set_policy(app, guarded_env, forbidden_property_keys=["PLAN"])

    with pytest.raises(corrections.PolicyRefused, match="forbids writing the property “plan”"):
        approve(app, approver, correction.id)
    assert sandbox.state.request_paths() == []


def test_approval_is_refused_once_the_desk_deletes_someone_it_names(
    app, sandbox, guarded_env, author, approver
):
    correction = request(app, author, guarded_env, users_body(LIMIT + 1))
    deleted_subject(app, guarded_env, "identity", "person2@example.org")

    with pytest.raises(CorrectionInputError, match="re-create them in Heap"):
        approve(app, approver, correction.id)

    assert stored(app, correction.id)[0].state == "awaiting_approval"
    assert sandbox.state.request_paths() == []


def test_an_override_recorded_with_the_request_lets_the_approval_through(
    app, sandbox, guarded_env, author, approver
):
    deleted_subject(app, guarded_env, "identity", "person2@example.org")
    correction = request(
        app, author, guarded_env, users_body(LIMIT + 1), override_reason="ticket 7 says so"
    )
    assert approve(app, approver, correction.id).state == "succeeded"
    assert "person2@example.org" in heap_users(sandbox)


def test_a_waiting_correction_is_neither_retryable_nor_stale(
    app, sandbox, guarded_env, author, approver
):
    correction = request(app, author, guarded_env, users_body(LIMIT + 1))
    later = correction.started_at + corrections.STALE_AFTER * 10
    assert not corrections.is_retryable(correction, now=later)
    with (
        pytest.raises(corrections.NotRetryable),
        app.app_context(),
        session_scope(write=True) as session,
    ):
        corrections.retry(session, actor=approver, correction_id=correction.id)
    assert sandbox.state.request_paths() == []


# ----- rejecting and withdrawing ----------------------------------------------------------------
def test_reject_sends_nothing_and_records_the_reason(app, sandbox, guarded_env, author, approver):
    correction = request(app, author, guarded_env, users_body(LIMIT + 1))

    done = reject(app, approver, correction.id, reason="  the plan is wrong  ")

    assert done.state == "rejected"
    assert (done.decided_by, done.decision_reason) == (approver, "the plan is wrong")
    assert sandbox.state.request_paths() == []
    assert not corrections.is_retryable(done)
    [details] = [d for a, d in audit_details(app) if a == "correction.rejected"]
    assert details == {"reason": "the plan is wrong", "withdrawn": False}


def test_the_author_may_withdraw_their_own(app, sandbox, guarded_env, author):
    correction = request(app, author, guarded_env, users_body(LIMIT + 1))
    done = reject(app, author, correction.id, reason="sent the wrong file")
    assert done.state == "rejected" and done.decided_by == author
    [details] = [d for a, d in audit_details(app) if a == "correction.rejected"]
    assert details["withdrawn"] is True
    assert sandbox.state.request_paths() == []


@pytest.mark.parametrize("reason", ["", "   ", "x" * 2001])
def test_a_rejection_needs_a_reason(app, guarded_env, author, approver, reason):
    correction = request(app, author, guarded_env, users_body(LIMIT + 1))
    with pytest.raises(CorrectionInputError, match="reason"):
        reject(app, approver, correction.id, reason=reason)
    assert stored(app, correction.id)[0].state == "awaiting_approval"


def test_a_decided_correction_cannot_be_rejected(app, guarded_env, author, approver):
    correction = request(app, author, guarded_env, users_body(LIMIT + 1))
    reject(app, approver, correction.id)
    with pytest.raises(approval.WrongState):
        reject(app, author, correction.id)


def test_an_auditor_cannot_reject(app, guarded_env, author, make_user):
    correction = request(app, author, guarded_env, users_body(LIMIT + 1))
    with pytest.raises(approval.ApprovalRefused):
        reject(app, make_user("auditor"), correction.id)


# ----- lists ------------------------------------------------------------------------------------
def test_awaiting_lists_leave_out_ones_own(app, guarded_env, author, approver):
    mine = request(app, author, guarded_env, users_body(LIMIT + 1))
    theirs = request(app, approver, guarded_env, users_body(LIMIT + 2))
    request(app, approver, guarded_env, users_body(1))
    with app.app_context(), session_scope(write=False) as session:
        rows, total = approval.awaiting_approval(session, user_id=user_id(app, author))
        listed = corrections.list_corrections(session, state="awaiting_approval")
    assert ([row.id for row in rows], total) == ([theirs.id], 1)
    assert [row.id for row in listed] == [theirs.id, mine.id]
