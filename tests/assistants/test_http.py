"""/mcp over real HTTP: the bearer gate before any MCP handling, both protocol eras, and the
rest of the desk untouched by the mount."""

from __future__ import annotations

import anyio
import pytest
import requests
from assistant_helpers import *  # noqa: F401,F403
from assistant_helpers import answer, connect

from webapp.accounts import tokens as api_tokens
from webapp.db import session_scope
from webapp.models import ApiToken, utcnow

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "curl", "version": "1"},
    },
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def post(url: str, token: str | None = None, body: dict | None = None) -> requests.Response:
    headers = dict(HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(url, json=body or INITIALIZE, headers=headers, timeout=10)


@pytest.mark.parametrize(
    "token, says",
    [
        (None, "Authorization: Bearer"),
        ("", "Authorization: Bearer"),
        ("desk_not-a-token-the-desk-issued", "not one the desk knows"),
        ("something-else", "not one the desk knows"),
    ],
)
def test_no_usable_token_is_a_401_before_any_mcp_handling(mcp_url, token, says):
    response = post(mcp_url, token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["Cache-Control"] == "no-store"
    error = response.json()["error"]
    assert error["code"] == "unauthorized" and says in error["message"]
    assert "jsonrpc" not in response.text  # the SDK never saw it


def test_an_expired_or_revoked_token_is_told_why(app, mcp_url, api_token, make_user):
    expired, revoked = api_token("officer"), api_token("officer")
    with app.app_context(), session_scope(write=True) as session:
        for raw, column in ((expired, "expires_at"), (revoked, "revoked_at")):
            row = session.exec(
                ApiToken.__table__.select().where(ApiToken.token_hash == api_tokens.token_hash(raw))
            ).first()
            stored = session.get(ApiToken, row.id)
            setattr(stored, column, utcnow())
            if column == "revoked_at":
                stored.revoked_reason = "revoked"
        session.commit()
    assert "expired" in post(mcp_url, expired).json()["error"]["message"]
    assert "revoked" in post(mcp_url, revoked).json()["error"]["message"]


def test_the_sdk_client_fails_plainly_without_a_valid_token(mcp_url):
    async def run():
        async with connect(mcp_url, "desk_wrong") as client:
            await client.list_tools()

    with pytest.raises(Exception):  # noqa: B017 - the SDK's own error for an HTTP 401
        anyio.run(run)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_both_protocol_eras_are_served_statelessly(mcp_url, api_token, mode):
    token = api_token("auditor")

    async def run():
        async with connect(mcp_url, token, mode=mode) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            batches = answer(await client.call_tool("list_batches", {}))
            return client.protocol_version, names, batches

    version, names, batches = anyio.run(run)
    assert version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
    assert "list_batches" in names
    assert batches == {"batches": [], "total": 0, "shown": 0}


def test_the_rest_of_the_desk_is_untouched_by_the_mount(mcp_url, make_user):
    make_user("admin")  # past the first-run setup page
    base = mcp_url.removesuffix("/mcp")
    assert requests.get(f"{base}/api/v1/health", timeout=10).json()["status"] in {"ok", "degraded"}
    assert requests.get(f"{base}/mcp/else", timeout=10, allow_redirects=False).status_code == 404
    login = requests.get(f"{base}/login", timeout=10)
    assert login.status_code == 200 and "Content-Security-Policy" in login.headers


def test_many_callers_at_once_are_all_answered(mcp_url, api_token):
    tokens = [api_token("officer") for _ in range(4)]
    results: list[dict] = []

    async def one(token: str) -> None:
        async with connect(mcp_url, token) as client:
            for _ in range(3):
                results.append(answer(await client.call_tool("deadlines_at_risk", {})))

    async def run():
        async with anyio.create_task_group() as group:
            for token in tokens:
                group.start_soon(one, token)

    anyio.run(run)
    assert len(results) == 12 and all(r["overdue"] == 0 for r in results)


def test_a_lone_surrogate_is_refused_plainly(mcp_url, api_token):
    """No SDK client sends one (so it is written by hand); the SDK's parser refuses it as
    malformed JSON, a 400. (NUL, which JSON allows, meets the tools' own check.)"""
    body = (
        '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"lookup_subject",'
        '"arguments":{"environment_id":1,"identity":"a\\ud800@example.org"}}}'
    )
    headers = {**HEADERS, "Authorization": f"Bearer {api_token('auditor')}"}
    response = requests.post(mcp_url, data=body.encode(), headers=headers, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700  # JSON-RPC's parse error
