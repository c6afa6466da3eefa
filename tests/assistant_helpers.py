"""Fixtures and helpers shared by the MCP tests: the desk over real HTTP (/mcp mounted as in
production) and the SDK's own client against it."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from werkzeug.serving import make_server

from webapp import tool_policy
from webapp.db import session_scope
from webapp.models import Environment

__all__ = ["answer", "connect", "entries", "error_text", "mcp_url", "set_policy"]


@pytest.fixture
def mcp_url(app) -> Iterator[str]:
    """The desk (its WSGI app, /mcp mounted as in production) on a free loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/mcp"
    finally:
        server.shutdown()
        app.extensions["desk_mcp"].close()


@asynccontextmanager
async def connect(url: str, token: str, mode: str = "auto") -> AsyncIterator[Client]:
    """The SDK's client over streamable HTTP, sending the desk token as a bearer token."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


def answer(result) -> dict:
    """A successful tool result's JSON answer."""
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


def error_text(result) -> str:
    """A refused tool call's message."""
    assert result.is_error, result.content[0].text
    return result.content[0].text


def set_policy(app, env_id: int, **changes) -> None:
    with app.app_context(), session_scope(write=True) as session:
        env = session.get(Environment, env_id)
        tool_policy.update_policy(session, actor="admin@example.org", env=env, changes=changes)


def entries(app, action: str | None = None) -> list[dict]:
    """The audit trail's entries (of one action, if given), oldest first."""
    from webapp.trail import audit

    with app.app_context(), session_scope(write=False) as session:
        return [e for e in audit.iter_entries(session) if action in (None, e["action"])]
