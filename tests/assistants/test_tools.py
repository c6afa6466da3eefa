"""Which tools a caller is shown: by role, by token scope, by the environments' policies."""

from __future__ import annotations

import anyio
import pytest
from assistant_helpers import *  # noqa: F401,F403
from assistant_helpers import connect, set_policy
from corrections_helpers import make_env
from workflow_factories import make_environment

from webapp.accounts import tokens as api_tokens
from webapp.accounts import users as accounts
from webapp.db import session_scope

READS = ["lookup_subject", "list_batches", "batch_status", "deadlines_at_risk", "verify_audit"]
WRITES = ["draft_deletion_batch", "preview_correction", "request_correction"]


def listed(url: str, token: str) -> dict:
    async def run():
        async with connect(url, token) as client:
            return {tool.name: tool for tool in (await client.list_tools()).tools}

    return anyio.run(run)


def read_token(app, make_user, role: str = "officer") -> str:
    email = make_user(role)
    with app.app_context(), session_scope(write=True) as session:
        user = accounts.find_user(session, email)
        return api_tokens.create_api_token(
            session, actor="test", user=user, name="read", scope="read"
        )


@pytest.fixture
def main_env(app, sandbox) -> int:
    return make_environment(app, sandbox)


@pytest.mark.parametrize("role", ["officer", "admin"])
def test_officers_and_admins_with_a_write_token_see_every_tool(mcp_url, api_token, main_env, role):
    assert list(listed(mcp_url, api_token(role))) == READS + WRITES


def test_auditors_see_the_reading_tools_only(mcp_url, api_token, main_env):
    assert list(listed(mcp_url, api_token("auditor"))) == READS


def test_a_read_scope_token_sees_the_reading_tools_only(app, mcp_url, make_user, main_env):
    assert list(listed(mcp_url, read_token(app, make_user))) == READS


def test_inputs_are_typed(mcp_url, api_token, main_env):
    tools = listed(mcp_url, api_token("officer"))
    lookup = tools["lookup_subject"].input_schema
    assert lookup["required"] == ["environment_id"]
    assert lookup["additionalProperties"] is False
    assert lookup["properties"]["environment_id"]["type"] == "integer"
    draft = tools["draft_deletion_batch"].input_schema["properties"]
    assert draft["identities"]["type"] == "array" and draft["identities"]["maxItems"] == 10_000
    assert tools["list_batches"].annotations.read_only_hint is True
    assert tools["request_correction"].annotations.destructive_hint is True


def test_descriptions_come_from_the_policies(app, mcp_url, api_token, sandbox, main_env):
    staging = make_env(app, sandbox, name="Staging")
    set_policy(app, main_env, descriptions={"deletion": "Erase with ticket ids only."})
    set_policy(app, staging, descriptions={"identify": "Only for the support team's merges."})
    tools = listed(mcp_url, api_token("officer"))
    assert "Erase with ticket ids only." in tools["draft_deletion_batch"].description
    assert f"(environment_id {main_env})" in tools["draft_deletion_batch"].description
    request = tools["request_correction"].description
    assert "“identify” in “Staging”" in request
    assert "Only for the support team's merges." in request


def test_a_tool_whose_operation_no_environment_allows_is_not_listed(
    app, mcp_url, api_token, sandbox, main_env
):
    staging = make_env(app, sandbox, name="Staging")
    token = api_token("officer")
    set_policy(app, main_env, operations={"deletion": False})
    assert "draft_deletion_batch" not in listed(mcp_url, token)

    corrections = {op: False for op in ("identify", "user_properties", "account_properties")}
    set_policy(app, main_env, operations={**corrections, "link_account": False, "track": False})
    set_policy(app, staging, operations={**corrections, "link_account": False})
    tools = listed(mcp_url, token)
    # Staging still allows track: the correction tools stay, offering that operation only.
    assert tools["request_correction"].input_schema["properties"]["operation"]["enum"] == ["track"]

    set_policy(app, staging, operations={"track": False})
    assert list(listed(mcp_url, token)) == READS


def test_deletion_is_offered_only_where_heap_takes_it(app, mcp_url, api_token, sandbox):
    make_env(app, sandbox, name="Staging")  # not Main Production: Heap's deletion API refuses it
    tools = listed(mcp_url, api_token("officer"))
    assert "draft_deletion_batch" not in tools and "request_correction" in tools
