"""`desk mcp --stdio` spawned by the SDK's own stdio client, as a desktop assistant starts it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from assistant_helpers import *  # noqa: F401,F403
from assistant_helpers import answer, entries
from mcp import Client, StdioServerParameters
from workflow_factories import make_environment

DESK = str(Path(sys.executable).parent / "desk")


def test_the_same_tools_over_stdio_as_the_tokens_owner(app, desk_env, api_token, sandbox):
    env = make_environment(app, sandbox)
    token = api_token("auditor")
    server = StdioServerParameters(
        command=DESK, args=["mcp", "--stdio"], env={**desk_env, "DESK_API_TOKEN": token}
    )

    async def run():
        async with Client(server) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            drafted = await client.call_tool(
                "draft_deletion_batch", {"environment_id": env, "identities": ["x@example.org"]}
            )
            return names, answer(await client.call_tool("list_batches", {})), drafted

    names, batches, drafted = anyio.run(run)
    assert names == [
        "lookup_subject",
        "list_batches",
        "batch_status",
        "deadlines_at_risk",
        "verify_audit",
    ]
    assert batches["total"] == 0
    assert drafted.is_error and "yours is an auditor" in drafted.content[0].text
    made = entries(app, "mcp.tool_called")
    assert [e["target_id"] for e in made] == ["draft_deletion_batch", "list_batches"]
    assert all(e["details"]["via"] == "mcp" and e["actor"].startswith("auditor") for e in made)


@pytest.mark.parametrize(
    "token, says",
    [
        (None, "Set DESK_API_TOKEN to a desk API token"),
        ("desk_unknown", "DESK_API_TOKEN: This API token is not one the desk knows"),
    ],
)
def test_it_refuses_to_start_without_a_valid_token(desk_env, token, says):
    env = {**desk_env, "PATH": "/usr/bin:/bin"}
    if token is not None:
        env["DESK_API_TOKEN"] = token
    done = subprocess.run(
        [DESK, "mcp", "--stdio"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert says in done.stderr and done.stdout == ""


def test_mcp_without_stdio_says_where_http_is(desk_env):
    done = subprocess.run(
        [DESK, "mcp"], env=desk_env, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    assert done.returncode == 2 and "/mcp of `desk serve`" in done.stderr
