"""The MCP server: listing and calling the tools, listing and reading the reports, for a caller.

Built on the SDK's low-level `Server`, whose handlers run per request, because the tools a
caller sees depend on who they are and on the policies as they are now. The handlers are
async; the desk's work is synchronous (SQLAlchemy, the Heap client), so each call runs in a
worker thread with the Flask app context (anyio.to_thread copies context variables) and one
slow call never holds up another on the event loop.

Every call is audited as the token's user, action `mcp.tool_called` or `mcp.resource_read`,
with the tool, the outcome and the names of the arguments given — never their values — and
every entry the domain writes during the call carries `"via": "mcp"` (trail/audit.py: via).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import mcp_types as types
from flask import Flask
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from webapp.accounts.access import Principal
from webapp.assistants import resources, tools
from webapp.assistants.arguments import problems
from webapp.assistants.callers import Unauthenticated, caller_for_token, refusal
from webapp.assistants.reading import ToolRefused
from webapp.db import session_scope
from webapp.forms import unstorable_text
from webapp.trail import audit

log = logging.getLogger(__name__)

CALLER_KEY = "desk.caller"  # where the HTTP gate leaves the caller in the ASGI scope
CHANNEL = "mcp"
FAILED = (
    "The desk could not complete this call (the error is logged for its operators); nothing "
    "more was done than the audit trail shows."
)
INSTRUCTIONS = (
    "Deletion Desk carries out GDPR erasures against Heap and proves them. You act as the "
    "person whose API token you hold, within their role and the environments' tool policies. "
    "You can look people up, follow batches and deadlines, verify the audit trail, draft "
    "deletion batches and preview or request corrections. You cannot approve anything: a "
    "second person approves every deletion batch, and corrections above a policy's limit, in "
    "the desk itself."
)


def _result(answer: dict[str, Any]) -> types.CallToolResult:
    text = json.dumps(answer, ensure_ascii=False, default=str)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structured_content=answer
    )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True
    )


class DeskServer:
    """The desk's MCP handlers for one Flask app; `token` is stdio's, HTTP callers bring theirs."""

    def __init__(self, app: Flask, *, token: str | None = None) -> None:
        self.app = app
        self.token = token

    def build(self) -> Server:
        return Server(
            "deletion-desk",
            version="1",
            title="Deletion Desk",
            instructions=INSTRUCTIONS,
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
            on_list_resources=self.list_resources,
            on_list_resource_templates=self.list_resource_templates,
            on_read_resource=self.read_resource,
        )

    async def caller(self, ctx) -> Principal:
        """The HTTP gate's caller, or (stdio) the environment's token, checked on every call."""
        if ctx.request is not None:
            caller = ctx.request.scope.get(CALLER_KEY)
            if caller is None:  # the gate always sets it; never serve an unauthenticated call
                raise MCPError(code=types.INVALID_REQUEST, message="Not authenticated.")
            return caller
        try:
            return await anyio.to_thread.run_sync(caller_for_token, self.app, self.token)
        except Unauthenticated as refused:
            raise MCPError(code=types.INVALID_REQUEST, message=str(refused)) from None

    # --- tools ---------------------------------------------------------------------------
    async def list_tools(self, ctx, _params) -> types.ListToolsResult:
        caller = await self.caller(ctx)
        found = await anyio.to_thread.run_sync(self._listed, caller)
        # Each caller's list is their own and follows the policies: never cached.
        return types.ListToolsResult(tools=found, ttl_ms=0, cache_scope="private")

    def _listed(self, caller: Principal) -> list[types.Tool]:
        with self.app.app_context(), session_scope(write=False) as session:
            return tools.listed(caller, tools.current_offer(session))

    async def call_tool(self, ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        caller = await self.caller(ctx)
        return await anyio.to_thread.run_sync(
            self._call, caller, params.name, params.arguments or {}
        )

    def _call(self, caller: Principal, name: str, given: dict[str, Any]) -> types.CallToolResult:
        tool = tools.TOOLS.get(name)
        outcome = "refused"
        with self.app.app_context(), audit.via(CHANNEL):
            try:
                result, outcome = self._run(caller, tool, given), "ok"
            except ToolRefused as refused:
                result = _error(str(refused))
            except ValidationError as invalid:
                outcome, result = "invalid", _error(problems(invalid))
            except Exception:
                log.exception("MCP tool %s failed", tool.name if tool else "(unknown)")
                outcome, result = "failed", _error(FAILED)
            self._audit_call(caller, tool, given, outcome)
        return result

    def _run(self, caller: Principal, tool: tools.Tool | None, given: dict[str, Any]):
        if tool is None:
            raise ToolRefused("The desk has no tool of that name; list the tools to see yours.")
        why = refusal(caller, tool.name, tool.access)
        if why is None and tool.gate is not None:
            with session_scope(write=False) as session:
                why = tools.gate_refusal(tool, tools.current_offer(session))
        if why is not None:
            raise ToolRefused(why)
        problem = unstorable_text(given)
        if problem:
            raise ToolRefused(problem)
        return _result(tool.run(caller, tool.arguments.model_validate(given)))

    def _audit_call(self, caller: Principal, tool, given: dict[str, Any], outcome: str) -> None:
        # Only the names the tool defines: any other key is the caller's free text.
        known = set(tool.arguments.model_fields) if tool else set()
        named = sorted(key for key in given if key in known)
        details = {
            "tool": tool.name if tool else None,
            "outcome": outcome,
            "arguments": named,
            "unknown_arguments": len(given) - len(named),
        }
        with session_scope(write=True) as session:
            audit.record(
                session,
                actor=caller.email,
                action="mcp.tool_called",
                target_type="mcp_tool",
                target_id=tool.name if tool else None,
                details=details,
            )
            session.commit()

    # --- resources ---------------------------------------------------------------------
    async def list_resources(self, ctx, _params) -> types.ListResourcesResult:
        await self.caller(ctx)
        return types.ListResourcesResult(resources=resources.listed(), ttl_ms=0)

    async def list_resource_templates(self, ctx, _params) -> types.ListResourceTemplatesResult:
        await self.caller(ctx)
        return types.ListResourceTemplatesResult(resource_templates=resources.templates())

    async def read_resource(self, ctx, params: types.ReadResourceRequestParams):
        caller = await self.caller(ctx)
        return await anyio.to_thread.run_sync(self._read, caller, str(params.uri))

    def _read(self, caller: Principal, uri: str) -> types.ReadResourceResult:
        kind = resources.kind_of(uri)
        outcome, batch_id = "failed", None
        with self.app.app_context(), audit.via(CHANNEL):
            try:
                text, batch_id = resources.read(self.app, caller, uri)
                outcome = "ok"
            except resources.ResourceMissing as missing:
                outcome = "missing"
                raise MCPError(code=types.INVALID_PARAMS, message=str(missing)) from None
            except Exception:
                log.exception("MCP resource %s failed", kind)
                raise MCPError(code=types.INTERNAL_ERROR, message=FAILED) from None
            finally:
                with session_scope(write=True) as session:
                    audit.record(
                        session,
                        actor=caller.email,
                        action="mcp.resource_read",
                        target_type="batch" if batch_id else "mcp_resource",
                        target_id=batch_id or kind,
                        details={"resource": kind, "outcome": outcome},
                    )
                    session.commit()
        contents = types.TextResourceContents(uri=uri, mime_type=resources.CSV, text=text)
        return types.ReadResourceResult(contents=[contents], ttl_ms=0, cache_scope="private")
