"""An environment's tool policy: defaults, changes (audited before and after), and the checks
the corrections and the deletion workflow make with it."""

from __future__ import annotations

import json

import pytest
from corrections_helpers import *  # noqa: F401,F403
from corrections_helpers import make_env
from sqlmodel import select
from workflow_factories import make_environment

from webapp import tool_policy
from webapp.corrections import service as corrections
from webapp.db import session_scope
from webapp.erasure import batches
from webapp.models import AuditEntry, Environment


def policy(app, env_id: int) -> tool_policy.Policy:
    with app.app_context(), session_scope(write=False) as session:
        return tool_policy.policy_of(session, session.get(Environment, env_id))


def change(app, env_id: int, changes: dict) -> tool_policy.Policy:
    with app.app_context(), session_scope(write=True) as session:
        env = session.get(Environment, env_id)
        return tool_policy.update_policy(
            session, actor="admin@example.org", env=env, changes=changes
        )


def test_a_new_main_production_environment_asks_four_eyes_above_100_items(app, sandbox):
    main = policy(app, make_environment(app, sandbox))
    other = policy(app, make_env(app, sandbox, name="Staging"))
    assert main.corrections_four_eyes_above == 100
    assert main.needs_four_eyes(101) and not main.needs_four_eyes(100)
    assert other.corrections_four_eyes_above is None and not other.needs_four_eyes(50_000)
    for found in (main, other):
        assert all(found.operations[op] for op in tool_policy.OPERATIONS)
        assert found.max_items == tool_policy.MAX_ITEMS_LIMIT
        assert found.forbidden_property_keys == []
        assert found.description("identify") == tool_policy.DEFAULT_DESCRIPTIONS["identify"]


def test_a_change_of_any_subset_is_stored_and_audited_with_before_and_after(app, sandbox):
    env_id = make_env(app, sandbox)
    after = change(
        app,
        env_id,
        {"operations": {"track": False}, "forbidden_property_keys": ["email", "ssn_*"]},
    )
    assert after.operations["track"] is False and after.operations["identify"] is True
    assert policy(app, env_id) == after
    with app.app_context(), session_scope(write=False) as session:
        entry = session.exec(
            select(AuditEntry).where(AuditEntry.action == tool_policy.CHANGED_ACTION)
        ).one()
    details = json.loads(entry.details)
    assert details["changed"] == ["operations", "forbidden_property_keys"]
    assert details["before"]["operations"]["track"] is True
    assert details["after"]["operations"]["track"] is False
    assert details["after"]["forbidden_property_keys"] == ["email", "ssn_*"]
    assert entry.actor == "admin@example.org" and entry.target_id == str(env_id)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"operations": {"delete_everything": True}}, "Unknown operation delete_everything"),
        ({"operations": {"track": "no"}}, "must be true or false"),
        ({"max_items": 0}, "from 1 to 50,000"),
        ({"max_items": True}, "whole number"),
        ({"corrections_four_eyes_above": -1}, "from 0 to 50,000"),
        ({"forbidden_property_keys": "email"}, "must be a list"),
        ({"forbidden_property_keys": [" "]}, "non-empty"),
        ({"descriptions": {"track": "x" * 1001}}, "over 1000 characters"),
        ({"colour": "blue"}, "Unknown policy field colour"),
    ],
)
def test_a_bad_change_says_why_and_changes_nothing(app, sandbox, changes, message):
    env_id = make_env(app, sandbox)
    before = policy(app, env_id)
    with pytest.raises(tool_policy.PolicyInputError, match=message):
        change(app, env_id, {"max_items": 5, **changes})
    assert policy(app, env_id) == before


def test_an_empty_description_puts_the_desks_own_back(app, sandbox):
    env_id = make_env(app, sandbox)
    assert (
        change(app, env_id, {"descriptions": {"track": "Only for refunds."}}).description("track")
        == "Only for refunds."
    )
    assert (
        change(app, env_id, {"descriptions": {"track": " "}}).description("track")
        == (tool_policy.DEFAULT_DESCRIPTIONS["track"])
    )


def test_forbidden_keys_match_names_and_patterns_whatever_the_case():
    found = tool_policy.Policy(
        operations={},
        corrections_four_eyes_above=None,
        max_items=10,
        forbidden_property_keys=["email", "ssn_*", "?hone"],
    )
    keys = ["Email", "plan", "ssn_last4", "phone", "ssn", "Phone"]
    assert tool_policy.forbidden_keys_in(found, keys) == ["Email", "ssn_last4", "phone", "Phone"]


def preview(app, env_id, family, data):
    with app.app_context(), session_scope(write=False) as session:
        return corrections.preview(session, environment_id=env_id, family=family, data=data)


def test_a_disabled_operation_is_refused_before_anything_else(app, sandbox, heap_env):
    change(app, heap_env, {"operations": {"identify": False}})
    with pytest.raises(corrections.OperationDisabled, match="disables identify"):
        preview(app, heap_env, "identify", {"user_id": "1", "identity": "ann@example.org"})
    # the other operations still work
    assert preview(app, heap_env, "user-properties", {"identity": "ann", "properties": {"a": 1}})


def test_a_forbidden_property_key_is_refused_in_every_operation_that_writes_properties(
    app, sandbox, heap_env
):
    change(app, heap_env, {"forbidden_property_keys": ["email*"]})
    bodies = [
        ("user-properties", {"identity": "ann", "properties": {"Email_2": "a@b.c"}}),
        (
            "user-properties",
            {
                "users": [
                    {"identity": "a", "properties": {"plan": "x"}},
                    {"identity": "b", "properties": {"email": "x"}},
                ]
            },
        ),
        ("account-properties", {"account_id": "acme", "properties": {"email": "x"}}),
        ("events", {"event": "Refund", "identity": "ann", "properties": {"email": "x"}}),
    ]
    for family, data in bodies:
        with pytest.raises(corrections.PolicyRefused, match="forbids writing the property"):
            preview(app, heap_env, family, data)
    assert preview(app, heap_env, "user-properties", {"identity": "a", "properties": {"plan": 1}})


def test_more_items_than_the_policy_allows_are_refused(app, sandbox, heap_env):
    change(app, heap_env, {"max_items": 2})
    users = [{"identity": f"u{n}", "properties": {"plan": "pro"}} for n in range(3)]
    with pytest.raises(corrections.PolicyRefused, match="allows at most 2 in one correction"):
        preview(app, heap_env, "user-properties", {"users": users})
    assert preview(app, heap_env, "user-properties", {"users": users[:2]}).plan.items == 2


def test_the_preview_says_when_a_second_officer_must_approve(app, sandbox, heap_env):
    change(app, heap_env, {"corrections_four_eyes_above": 1})
    users = [{"identity": f"u{n}", "properties": {"plan": "pro"}} for n in range(2)]
    assert preview(app, heap_env, "user-properties", {"users": users}).needs_approval
    assert not preview(app, heap_env, "user-properties", {"users": users[:1]}).needs_approval


def test_deletion_switched_off_refuses_uploads_and_approvals(app, sandbox, make_user):
    env_id = make_environment(app, sandbox)
    uploader, approver = make_user("officer"), make_user("officer")
    with app.app_context(), session_scope(write=True) as session:
        waiting, _ = batches.create_batch(
            session,
            actor=uploader,
            environment_id=env_id,
            data=b"email\nann@example.org\n",
            filename="list.csv",
        )
        waiting_id = waiting.id
    change(app, env_id, {"operations": {"deletion": False}})
    refused = pytest.raises(batches.DeletionDisabled, match="disables deletion")
    with app.app_context(), session_scope(write=True) as session, refused:
        batches.create_batch(
            session,
            actor=uploader,
            environment_id=env_id,
            data=b"email\nbob@example.org\n",
            filename="list.csv",
        )
    refused = pytest.raises(batches.DeletionDisabled, match="disables deletion")
    with app.app_context(), session_scope(write=True) as session, refused:
        batches.approve(session, actor=approver, batch_id=waiting_id)
    with app.app_context(), session_scope(write=False) as session:
        assert batches.get_batch(session, waiting_id).state == "awaiting_approval"
