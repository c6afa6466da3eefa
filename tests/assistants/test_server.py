"""Calling the tools over real HTTP with the SDK's client: roles, scopes and policies refuse
plainly, drafts and corrections go through the same services as the REST API, every call is
audited with `"via": "mcp"` and never a value."""

from __future__ import annotations

import json

import anyio
import pytest
from assistant_helpers import *  # noqa: F401,F403
from assistant_helpers import answer, connect, entries, error_text, set_policy
from corrections_helpers import *  # noqa: F401,F403
from corrections_helpers import make_env
from workflow_factories import make_environment

from webapp.accounts import tokens as api_tokens
from webapp.accounts import users as accounts
from webapp.db import session_scope
from webapp.erasure import batches
from webapp.models import Batch, Correction, User

ANN, BOB = "ann.mcp@example.org", "bob.mcp@example.org"


def call(url: str, token: str, name: str, arguments: dict):
    async def run():
        async with connect(url, token) as client:
            return await client.call_tool(name, arguments)

    return anyio.run(run)


def calls(url: str, token: str, *steps: tuple[str, dict]) -> list:
    async def run():
        async with connect(url, token) as client:
            return [await client.call_tool(name, arguments) for name, arguments in steps]

    return anyio.run(run)


def email_of(app, token: str) -> str:
    with app.app_context(), session_scope(write=False) as session:
        return api_tokens.user_for_api_token(session, token)[0].email


def batch_row(app, batch_id: int) -> tuple[Batch, str]:
    with app.app_context(), session_scope(write=False) as session:
        batch = session.get(Batch, batch_id)
        return batch, session.get(User, batch.uploaded_by).email


def batch_count(app) -> int:
    with app.app_context(), session_scope(write=False) as session:
        return len(session.exec(Batch.__table__.select()).all())


@pytest.fixture
def main_env(app, sandbox) -> int:
    return make_environment(app, sandbox)


DRAFT = {"identities": [ANN, BOB], "user_ids": [12345, "not-a-number"], "reference": "T-1"}


# ----- roles and scopes ---------------------------------------------------------------------
def test_an_auditors_token_cannot_draft(app, mcp_url, api_token, main_env):
    token = api_token("auditor")
    result = call(mcp_url, token, "draft_deletion_batch", {"environment_id": main_env, **DRAFT})
    assert "needs an officer or admin account; yours is an auditor" in error_text(result)
    assert batch_count(app) == 0
    [entry] = entries(app, "mcp.tool_called")
    assert entry["actor"] == email_of(app, token)
    assert entry["details"]["outcome"] == "refused"


def test_a_read_scope_token_cannot_draft_or_request_corrections(
    app, mcp_url, make_user, main_env, heap_env, sandbox
):
    email = make_user("officer")
    with app.app_context(), session_scope(write=True) as session:
        user = accounts.find_user(session, email)
        token = api_tokens.create_api_token(session, actor="t", user=user, name="r", scope="read")
    draft, correction = calls(
        mcp_url,
        token,
        ("draft_deletion_batch", {"environment_id": main_env, **DRAFT}),
        (
            "request_correction",
            {
                "environment_id": heap_env,
                "operation": "identify",
                "body": {"user_id": "1", "identity": ANN},
            },
        ),
    )
    for result in (draft, correction):
        assert "has the read scope" in error_text(result)
    assert batch_count(app) == 0 and sandbox.state.request_paths() == []


# ----- deletion batches ----------------------------------------------------------------------
def test_a_drafted_batch_awaits_a_second_persons_approval(app, mcp_url, api_token, main_env):
    token = api_token("officer")
    result = call(mcp_url, token, "draft_deletion_batch", {"environment_id": main_env, **DRAFT})
    body = answer(result)
    assert body["state"] == "awaiting_approval"
    assert body["counts"] == {
        "rows": 4,
        "valid": 3,
        "malformed": 1,
        "duplicate": 0,
        "already_requested": 0,
        "excluded": 0,
    }
    [problem] = body["problems"]
    assert problem["item"] == "user_ids[1]" and problem["classification"] == "malformed"
    assert "approve" in body["approval"] and "No assistant can approve" in body["approval"]
    # Nothing the caller did not send, and not even that: the answer names no one.
    assert ANN not in result.content[0].text and "not-a-number" not in result.content[0].text

    batch, uploader = batch_row(app, body["batch_id"])
    officer = email_of(app, token)
    assert uploader == officer and batch.source == "mcp" and batch.reference == "T-1"
    with (
        app.app_context(),
        session_scope(write=True) as session,
        pytest.raises(batches.SelfApproval),
    ):
        batches.approve(session, actor=officer, batch_id=batch.id)
    second = email_of(app, api_token("officer"))
    with app.app_context(), session_scope(write=True) as session:
        assert batches.approve(session, actor=second, batch_id=batch.id).state == "approved"
    status = answer(call(mcp_url, token, "batch_status", {"batch_id": batch.id}))
    assert status["people"]["uploaded_by"] == officer
    assert status["people"]["approved_by"] == second


def test_no_tool_approves(mcp_url, api_token, main_env):
    async def run():
        async with connect(mcp_url, api_token("admin")) as client:
            return [tool.name for tool in (await client.list_tools()).tools]

    assert not [name for name in anyio.run(run) if "approve" in name or "reject" in name]


def test_drafting_where_the_policy_disables_deletion_is_refused(app, mcp_url, api_token, main_env):
    set_policy(app, main_env, operations={"deletion": False})
    result = call(
        mcp_url, api_token("officer"), "draft_deletion_batch", {"environment_id": main_env, **DRAFT}
    )
    assert "No environment's tool policy offers deletion" in error_text(result)
    assert batch_count(app) == 0


def test_a_looked_up_subject_is_found_without_its_identifier_in_the_answer(
    app, mcp_url, api_token, main_env
):
    token = api_token("officer")
    drafted, found, missing = calls(
        mcp_url,
        token,
        ("draft_deletion_batch", {"environment_id": main_env, "identities": [ANN]}),
        ("lookup_subject", {"environment_id": main_env, "identity": ANN}),
        ("lookup_subject", {"environment_id": main_env, "user_id": 999}),
    )
    body = answer(found)
    assert body["deleted"] is False and body["looked_up"] == "identity"
    assert [row["batch_id"] for row in body["results"]] == [answer(drafted)["batch_id"]]
    assert ANN not in found.content[0].text
    assert answer(missing)["results"] == []


# ----- corrections ---------------------------------------------------------------------------
IDENTIFY = {"user_id": "4321", "identity": ANN}
TWO_USERS = {
    "users": [
        {"identity": ANN, "properties": {"plan": "pro"}},
        {"identity": BOB, "properties": {"plan": "pro"}},
    ]
}


def test_a_disabled_operation_is_refused(app, mcp_url, api_token, sandbox, heap_env):
    make_env(app, sandbox, name="Other")  # identify stays offered somewhere: the tool is listed
    set_policy(app, heap_env, operations={"identify": False})
    arguments = {"environment_id": heap_env, "operation": "identify", "body": IDENTIFY}
    preview, request = calls(
        mcp_url,
        api_token("officer"),
        ("preview_correction", arguments),
        ("request_correction", arguments),
    )
    for result in (preview, request):
        assert "disables identify" in error_text(result)
    assert sandbox.state.request_paths() == []


def test_a_correction_within_the_policy_is_made_as_the_caller(
    app, mcp_url, api_token, sandbox, heap_env
):
    token = api_token("officer")
    arguments = {"environment_id": heap_env, "operation": "identify", "body": IDENTIFY}
    body = answer(call(mcp_url, token, "request_correction", arguments))
    assert body["state"] == "succeeded" and body["items"] == 1
    assert sandbox.state.request_paths() == ["POST /api/v1/identify"]
    with app.app_context(), session_scope(write=False) as session:
        assert session.get(Correction, body["correction_id"]).actor == email_of(app, token)
    [sent] = entries(app, "correction.sent")
    assert sent["details"]["via"] == "mcp"


def test_a_preview_says_when_a_second_officer_must_approve(
    app, mcp_url, api_token, sandbox, heap_env
):
    set_policy(app, heap_env, corrections_four_eyes_above=1)
    arguments = {"environment_id": heap_env, "operation": "user_properties", "body": TWO_USERS}
    body = answer(call(mcp_url, api_token("officer"), "preview_correction", arguments))
    assert body["needs_approval"] is True and body["items"] == 2
    assert [c["url"].rsplit("/", 1)[-1] for c in body["calls"]] == ["add_user_properties"]
    assert sandbox.state.request_paths() == []


def test_corrections_over_the_policys_limit_wait_for_approval(
    app, mcp_url, api_token, sandbox, heap_env
):
    """Needs corrections' four-eyes in corrections/service.send (issue 14, another part)."""
    set_policy(app, heap_env, corrections_four_eyes_above=1)
    arguments = {"environment_id": heap_env, "operation": "user_properties", "body": TWO_USERS}
    body = answer(call(mcp_url, api_token("officer"), "request_correction", arguments))
    assert body["state"] == "awaiting_approval"
    assert "nothing was sent" in body["approval"]
    assert sandbox.state.request_paths() == []


def test_the_policys_forbidden_keys_are_refused(app, mcp_url, api_token, sandbox, heap_env):
    set_policy(app, heap_env, forbidden_property_keys=["plan"])
    arguments = {"environment_id": heap_env, "operation": "user_properties", "body": TWO_USERS}
    result = call(mcp_url, api_token("officer"), "request_correction", arguments)
    assert "forbids writing the property “plan”" in error_text(result)
    assert sandbox.state.request_paths() == []


# ----- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, arguments, says",
    [
        ("no_such_tool", {}, "no tool of that name"),
        ("lookup_subject", {"environment_id": 1}, "exactly one of identity or user_id"),
        ("lookup_subject", {"environment_id": 1, "identity": "a@b.c", "user_id": "1"}, "exactly"),
        ("lookup_subject", {"environment_id": 999, "identity": "a@b.c"}, "no environment 999"),
        ("lookup_subject", {"environment_id": 1, "identity": "   "}, "identity"),
        ("list_batches", {"state": "sent"}, "state"),
        ("list_batches", {"page": 2}, "page: Extra inputs are not permitted"),
        ("batch_status", {"batch_id": "seven"}, "batch_id"),
        ("batch_status", {"batch_id": 2**40}, "batch_id"),
        ("batch_status", {"batch_id": 999}, "no batch 999"),
        ("batch_status", {}, "batch_id: Field required"),
        ("draft_deletion_batch", {"environment_id": 1}, "give identities or user_ids"),
        ("draft_deletion_batch", {"environment_id": 1, "identities": "a@b.c"}, "identities"),
        ("draft_deletion_batch", {"environment_id": 1, "identities": ["a\x00b"]}, "NUL"),
        ("draft_deletion_batch", {"environment_id": 1, "user_ids": [True]}, "user_ids"),
        ("preview_correction", {"environment_id": 1, "operation": "delete", "body": {}}, "op"),
        ("preview_correction", {"environment_id": 1, "operation": "track", "body": []}, "body"),
        (
            "preview_correction",
            {"environment_id": 1, "operation": "identify", "body": {}},
            "user_id",
        ),
        (
            "request_correction",
            {"environment_id": 1, "operation": "identify", "body": {}, "confirm_warnings": "yes"},
            "confirm_warnings",
        ),
    ],
)
def test_bad_input_is_a_tool_error_never_a_crash(
    app, mcp_url, api_token, main_env, name, arguments, says
):
    token = api_token("admin")
    refused, still = calls(mcp_url, token, (name, arguments), ("list_batches", {}))
    assert says.lower() in error_text(refused).lower()
    assert answer(still)["total"] == 0
    assert entries(app, "mcp.tool_called")[0]["details"]["outcome"] in {"refused", "invalid"}


# ----- the audit trail -----------------------------------------------------------------------
def test_every_call_is_audited_with_via_mcp_and_no_values(app, mcp_url, api_token, main_env):
    token = api_token("officer")
    calls(
        mcp_url,
        token,
        ("lookup_subject", {"environment_id": main_env, "identity": ANN}),
        ("draft_deletion_batch", {"environment_id": main_env, **DRAFT}),
        ("batch_status", {"batch_id": 1, "sneaky": BOB}),
        ("deadlines_at_risk", {}),
        ("verify_audit", {}),
    )
    officer = email_of(app, token)
    made = entries(app, "mcp.tool_called")
    assert [(e["target_id"], e["details"]["outcome"]) for e in made] == [
        ("lookup_subject", "ok"),
        ("draft_deletion_batch", "ok"),
        ("batch_status", "invalid"),
        ("deadlines_at_risk", "ok"),
        ("verify_audit", "ok"),
    ]
    assert all(e["actor"] == officer and e["details"]["via"] == "mcp" for e in made)
    assert made[1]["details"]["arguments"] == [
        "environment_id",
        "identities",
        "reference",
        "user_ids",
    ]
    assert made[2]["details"]["arguments"] == ["batch_id"]
    assert made[2]["details"]["unknown_arguments"] == 1
    for action in ("subject.looked_up", "batch.uploaded"):
        [entry] = entries(app, action)
        assert entry["actor"] == officer and entry["details"]["via"] == "mcp"
    trail = json.dumps(entries(app), ensure_ascii=False)
    for value in (ANN, BOB, "not-a-number", "12345", "sneaky"):
        assert value not in trail
