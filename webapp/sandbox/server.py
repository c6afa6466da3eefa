"""Run the sandbox on a real threaded HTTP server (werkzeug), in the background or not."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from webapp.sandbox.app import create_sandbox_app
from webapp.sandbox.config import SandboxConfig
from webapp.sandbox.faults import parse_faults
from webapp.sandbox.state import SandboxState

logger = logging.getLogger(__name__)


class QuietRequestHandler(WSGIRequestHandler):
    """Send werkzeug's access log to DEBUG instead of stderr (tests start many servers)."""

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug's name
        logger.debug("sandbox %s: " + message, type, *args)


def make_sandbox_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    quiet: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    **knobs: Any,
) -> tuple[BaseWSGIServer, SandboxState]:
    """Bind a threaded server for a new sandbox; `knobs` are SandboxConfig fields."""
    state = SandboxState(SandboxConfig(**knobs), clock=clock, sleep=sleep)
    handler = QuietRequestHandler if quiet else None
    server = make_server(
        host, port, create_sandbox_app(state), threaded=True, request_handler=handler
    )
    return server, state


def server_url(server: BaseWSGIServer) -> str:
    """Return the base URL a client uses to reach `server`."""
    host = server.server_address[0]
    if ":" in str(host):
        host = f"[{host}]"
    return f"http://{host}:{server.server_port}"


class SandboxServer:
    """A sandbox served from a daemon thread; `.url`, `.state`, `.stop()`."""

    def __init__(self, server: BaseWSGIServer, state: SandboxState) -> None:
        self._server = server
        self.state = state
        self.url = server_url(server)
        self._thread = threading.Thread(
            # A short poll interval keeps stop() fast: tests start a sandbox each.
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"heap-sandbox-{server.server_port}",
            daemon=True,
        )
        self._stopped = False

    @property
    def app_id(self) -> str:
        """The app_id the deletion API accepts."""
        return self.state.config.app_id

    @property
    def api_key(self) -> str:
        """The api_key the deletion API accepts."""
        return self.state.config.api_key

    def add_faults(self, *faults: dict[str, Any], replace: bool = False) -> None:
        """Queue faults, same JSON shapes as POST /_sandbox/faults."""
        self.state.add_faults(parse_faults(list(faults)), replace=replace)

    def configure(self, **changes: Any) -> None:
        """Change knobs, as POST /_sandbox/config does."""
        self.state.configure(changes)

    def start(self) -> SandboxServer:
        """Start serving in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SandboxServer(url={self.url!r})"


def start_sandbox(host: str = "127.0.0.1", port: int = 0, **knobs: Any) -> SandboxServer:
    """Start a sandbox in a daemon thread and return it; port 0 picks a free port.

    `knobs`: SandboxConfig fields (app_id, api_key, token_ttl, complete_after, ...) plus
    `clock`, `sleep` and `quiet` (default True: access log at DEBUG).
    """
    server, state = make_sandbox_server(host, port, **knobs)
    return SandboxServer(server, state).start()
