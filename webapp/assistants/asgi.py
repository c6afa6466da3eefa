"""The ASGI side of /mcp: the bearer-token gate and the event loop thread that runs the SDK.

`BearerGate` turns the bearer token into the caller before the SDK sees anything: a missing,
unknown, expired or revoked token is a 401 and no MCP handling happens at all. `McpLoop` is one
worker process's event loop thread holding the SDK's session manager open (stateless, JSON
answers), and a2wsgi's adapter that lets a WSGI thread hand it one request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from dataclasses import dataclass

import anyio
from a2wsgi import ASGIMiddleware
from flask import Flask
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from webapp.assistants.callers import Unauthenticated, bearer_token, caller_for_token
from webapp.assistants.server import CALLER_KEY, DeskServer

log = logging.getLogger(__name__)

START_SECONDS = 15.0
# After its answer, how long a request's MCP task may take to wind down (stateless: instants).
WIND_DOWN_SECONDS = 5.0
EXTRA_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class BearerGate:
    """ASGI: authenticate the bearer token, then hand the request and its caller to the SDK."""

    def __init__(self, app: Flask, inner) -> None:
        self.app = app
        self.inner = inner

    async def __call__(self, scope, receive, send) -> None:
        send = _with_headers(send)
        token = bearer_token(Headers(scope=scope).get("authorization"))
        try:
            caller = await anyio.to_thread.run_sync(caller_for_token, self.app, token)
        except Unauthenticated as refused:
            await _error(401, "unauthorized", str(refused))(scope, receive, send)
            return
        except Exception:
            log.exception("could not check an MCP request's token")
            await _error(503, "unavailable", "The desk cannot check tokens right now.")(
                scope, receive, send
            )
            return
        await self.inner({**scope, CALLER_KEY: caller}, receive, send)


def _error(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="Deletion Desk"'} if status == 401 else None
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers)


def _with_headers(send):
    async def sending(message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            extra = [(name, value) for name, value in EXTRA_HEADERS if name not in present]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


@dataclass
class McpLoop:
    """One process's event loop thread, holding the session manager open while it runs."""

    pid: int
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    stop: asyncio.Event
    task: asyncio.Task
    adapter: ASGIMiddleware

    @classmethod
    def start(cls, app: Flask) -> McpLoop:
        manager = StreamableHTTPSessionManager(
            app=DeskServer(app).build(),
            json_response=True,
            stateless=True,
            max_request_body_size=app.config["MAX_CONTENT_LENGTH"],
        )
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="desk-mcp", daemon=True)
        thread.start()
        ready: concurrent.futures.Future = concurrent.futures.Future()

        async def hold(stop: asyncio.Event) -> None:
            try:
                async with manager.run():
                    ready.set_result(None)
                    await stop.wait()
            except BaseException as error:
                if not ready.done():
                    ready.set_exception(error)
                raise

        async def begin() -> tuple[asyncio.Event, asyncio.Task]:
            stop = asyncio.Event()
            return stop, loop.create_task(hold(stop))

        stop, task = asyncio.run_coroutine_threadsafe(begin(), loop).result(START_SECONDS)
        ready.result(START_SECONDS)
        gate = BearerGate(app, manager.handle_request)
        adapter = ASGIMiddleware(gate, wait_time=WIND_DOWN_SECONDS, loop=loop)
        return cls(os.getpid(), loop, thread, stop, task, adapter)

    def close(self) -> None:
        async def finish() -> None:
            self.stop.set()
            await self.task

        try:
            asyncio.run_coroutine_threadsafe(finish(), self.loop).result(START_SECONDS)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(START_SECONDS)
            if not self.thread.is_alive():
                self.loop.close()
