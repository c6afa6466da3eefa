"""`desk mcp --stdio`: the same tools and reports for a local assistant, over standard I/O.

The assistant's client starts the command; the token comes from DESK_API_TOKEN and is checked
before anything is served, then again on every call (a token revoked meanwhile stops working).
Standard output is the protocol's: the SDK points fd 1 at stderr for everything else.
"""

from __future__ import annotations

import anyio
from flask import Flask
from mcp.server.stdio import stdio_server

from webapp.accounts.access import Principal
from webapp.assistants.callers import caller_for_token
from webapp.assistants.server import DeskServer

TOKEN_VARIABLE = "DESK_API_TOKEN"  # noqa: S105 (the variable's name)


def check_token(app: Flask, token: str | None) -> Principal:
    """The person the token acts for, or Unauthenticated saying why it cannot serve."""
    return caller_for_token(app, token)


def serve_stdio(app: Flask, token: str) -> None:
    """Serve until the client closes standard input."""
    server = DeskServer(app, token=token).build()

    async def run() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(run)
