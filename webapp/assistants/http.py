"""/mcp over streamable HTTP, inside the desk's own WSGI workers (ARCHITECTURE.md, "Serving").

The SDK's transport is an ASGI app; gunicorn's gthread workers speak WSGI (PITFALLS.md #17).
`McpMount` sits in front of Flask: /mcp goes through a2wsgi's ASGI-to-WSGI adapter to the
SDK's session manager (assistants/asgi.py), everything else to Flask unchanged. The manager
runs stateless with JSON answers — each POST is one complete exchange, nothing is kept between
requests, so any worker can answer any request — on one event loop thread per worker process,
started by the first /mcp request that process serves (never at import or in `create_app`; a
forked worker starts its own). The SDK is imported then too, so other commands never pay for it.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from webapp.assistants.asgi import McpLoop

PATHS = frozenset({"/mcp", "/mcp/"})


class McpMount:
    """WSGI: /mcp to the MCP server on this process's event loop, every other path to Flask."""

    def __init__(self, app: Flask, wsgi_app) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._lock = threading.Lock()
        self._running: McpLoop | None = None

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "") not in PATHS:
            return self.wsgi_app(environ, start_response)
        return self._adapter()(environ, start_response)

    def _adapter(self):
        with self._lock:
            # A worker forked from a process that served /mcp has the loop's object, not its
            # thread: it starts its own.
            if self._running is None or self._running.pid != os.getpid():
                from webapp.assistants.asgi import McpLoop

                self._running = McpLoop.start(self.app)
            return self._running.adapter

    def close(self) -> None:
        """Stop this process's event loop (a worker exiting, a test ending), if it started."""
        with self._lock:
            running, self._running = self._running, None
        if running is not None and running.pid == os.getpid():
            running.close()


def mount(app: Flask) -> None:
    """Serve /mcp beside the app's routes (wiring only: the loop starts on the first call)."""
    mounted = McpMount(app, app.wsgi_app)
    app.wsgi_app = mounted
    app.extensions["desk_mcp"] = mounted
