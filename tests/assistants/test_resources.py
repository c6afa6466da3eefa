"""The deadline report and a batch's masked report as MCP resources, read over real HTTP."""

from __future__ import annotations

import anyio
import pytest
from assistant_helpers import *  # noqa: F401,F403
from assistant_helpers import answer, connect, entries
from mcp import MCPError
from workflow_factories import make_environment

ANN = "ann.report@example.org"


def test_the_reports_are_listed(mcp_url, api_token):
    async def run():
        async with connect(mcp_url, api_token("auditor")) as client:
            return await client.list_resources(), await client.list_resource_templates()

    listed, templates = anyio.run(run)
    assert [r.uri for r in listed.resources] == ["desk://deadlines/report.csv"]
    assert [t.uri_template for t in templates.resource_templates] == [
        "desk://batches/{batch_id}/report.csv"
    ]


def test_a_batch_report_is_masked_and_its_reading_audited(app, mcp_url, api_token, sandbox):
    env = make_environment(app, sandbox)
    officer, auditor = api_token("officer"), api_token("auditor")

    async def run():
        async with connect(mcp_url, officer) as client:
            drafted = answer(
                await client.call_tool(
                    "draft_deletion_batch", {"environment_id": env, "identities": [ANN]}
                )
            )
        async with connect(mcp_url, auditor) as client:
            uri = f"desk://batches/{drafted['batch_id']}/report.csv"
            report = await client.read_resource(uri)
            deadlines = await client.read_resource("desk://deadlines/report.csv")
            return drafted["batch_id"], report, deadlines

    batch_id, report, deadlines = anyio.run(run)
    [content] = report.contents
    assert content.mime_type == "text/csv"
    lines = content.text.splitlines()
    assert lines[0].startswith("row,classification,kind,fingerprint,identifier")
    assert ANN not in content.text and "a***@" in lines[1]
    assert deadlines.contents[0].text.startswith("urgency,days_left")
    [download] = entries(app, "evidence.downloaded")
    assert download["target_id"] == str(batch_id)
    assert download["details"] == {"kind": "report.csv", "masked": True, "via": "mcp"}
    reads = entries(app, "mcp.resource_read")
    assert [(e["details"]["resource"], e["details"]["outcome"]) for e in reads] == [
        ("batch_report", "ok"),
        ("deadline_report", "ok"),
    ]


@pytest.mark.parametrize(
    "uri",
    ["desk://batches/999/report.csv", "desk://batches/x/report.csv", "file:///etc/passwd"],
)
def test_an_unknown_resource_is_a_plain_error(app, mcp_url, api_token, uri):
    async def run():
        async with connect(mcp_url, api_token("auditor")) as client:
            with pytest.raises(MCPError) as raised:
                await client.read_resource(uri)
            # The server still answers afterwards.
            return raised.value, await client.call_tool("list_batches", {})

    error, still = anyio.run(run)
    assert "batch" in str(error).lower()
    assert answer(still)["total"] == 0
    [entry] = entries(app, "mcp.resource_read")
    assert entry["details"]["outcome"] == "missing"
