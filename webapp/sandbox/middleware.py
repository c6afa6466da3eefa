"""WSGI middleware: logs every Heap request, adds latency and plays faults around the app.

Faults live here rather than in the views because some must happen outside Flask: a dropped
connection has to escape the framework (Flask would turn an exception into a 500), and
"drop_after" / "slow_after" need the view to have run to completion first.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Response

from webapp.sandbox.faults import Fault, echoed, retry_after_header
from webapp.sandbox.state import SandboxState

MAX_BODY = 32 * 1024 * 1024
LOGGED_BODY_CHARS = 4000
# Never keep credentials in the request log, even the sandbox's own.
SECRET_HEADERS = frozenset({"HTTP_AUTHORIZATION", "HTTP_COOKIE", "HTTP_PROXY_AUTHORIZATION"})

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DroppedConnection(ConnectionAbortedError):
    """Raised after shutting the socket: werkzeug treats ConnectionError as a dropped client."""


class SandboxMiddleware:
    """Wrap the sandbox's Flask app (its `wsgi_app`)."""

    def __init__(self, app: WSGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox"):
            return self.app(environ, start_response)
        state = self.state
        raw = _buffer_body(environ)
        state.advance()
        method = environ.get("REQUEST_METHOD", "GET")
        entry = state.log_request(
            {
                "method": method,
                "path": path,
                "query": environ.get("QUERY_STRING") or None,
                "auth_scheme": _auth_scheme(environ),
                "headers": _safe_headers(environ),
                "body": _body_for_log(raw),
                "status": None,
                "fault": None,
                "notes": [],
            }
        )
        environ["sandbox.notes"] = entry["notes"]
        environ["sandbox.body"] = raw
        fault = state.take_fault(method, path)

        def logged_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            with state.lock:
                entry["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        if state.config.latency_ms:
            state.sleep(state.config.latency_ms / 1000)
        if fault is None:
            return self.app(environ, logged_start)
        with state.lock:
            entry["fault"] = fault.kind
        return self._play(fault, environ, logged_start, entry)

    def _play(
        self,
        fault: Fault,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        entry: dict[str, Any],
    ) -> Any:
        """Answer (or not) as the fault says."""
        kind = fault.kind
        if kind == "drop":
            _drop(environ)
        if kind == "expire_token":
            self.state.expire_tokens()
        elif kind == "slow":
            self.state.sleep(fault.seconds)
        elif kind in ("drop_after", "slow_after"):
            status, headers, body = self._run(environ)
            with self.state.lock:
                entry["status"] = int(status.split(" ", 1)[0])
            if kind == "drop_after":
                _drop(environ)
            self.state.sleep(fault.seconds)
            start_response(status, headers)
            return [body]
        elif kind != "expire_token":
            return fault_response(fault, environ.get("sandbox.body", b""))(environ, start_response)
        return self.app(environ, start_response)

    def _run(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        """Run the app to completion and return its whole answer, not yet sent."""
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured.update(status=status, headers=headers)
            return chunks.append

        result = self.app(environ, capture)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return captured["status"], captured["headers"], b"".join(chunks)


def fault_response(fault: Fault, body: bytes = b"") -> Response:
    """Return the answer of a status fault (400, 429, 5xx, redirect, respond).

    A 400 with `echo` repeats what the request named (`body`), as an API refusing it might.
    """
    if fault.kind == "respond":
        return Response(fault.body, status=fault.status, content_type=fault.content_type)
    if fault.kind == "redirect":
        return Response("", status=302, headers={"Location": fault.location})
    if fault.kind == "400":
        message = f"{fault.message}: {echoed(body)}" if fault.echo else fault.message
        shapes = {
            "err": {"err": {"message": message}},
            "error": {"error": message},
            "error_object": {"error": {"message": message}},
            "message": {"message": message},
        }
        if fault.shape == "text":
            return Response(message, status=400, mimetype="text/plain")
        return Response(json.dumps(shapes[fault.shape]), 400, mimetype="application/json")
    status = int(fault.kind)
    reason = "Too Many Requests" if status == 429 else "Server error"
    response = Response(f"{reason} (sandbox fault)", status=status, mimetype="text/plain")
    if fault.retry_after is not None:
        response.headers["Retry-After"] = retry_after_header(fault.retry_after)
    return response


def _drop(environ: dict[str, Any]) -> None:
    """Shut the client's connection without a response, then abort the request.

    shutdown() rather than close(): werkzeug still polls the socket after the app returns,
    and after a shutdown it reads EOF and ends the connection cleanly.
    """
    sock = environ.get("werkzeug.socket")
    if sock is None:
        raise RuntimeError("dropping a connection needs werkzeug's server (start_sandbox)")
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    raise DroppedConnection("sandbox fault: connection dropped")


def _buffer_body(environ: dict[str, Any]) -> bytes:
    """Read the body once (for the log) and put it back for the app."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        return b""  # Flask answers 413 from the header; do not pull it into memory.
    stream = environ["wsgi.input"]
    if length:
        raw = stream.read(length)
    elif environ.get("wsgi.input_terminated"):
        raw = stream.read(MAX_BODY + 1)
    else:
        raw = b""
    environ["wsgi.input"] = io.BytesIO(raw)
    environ["CONTENT_LENGTH"] = str(len(raw))
    return raw


def _body_for_log(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text[:LOGGED_BODY_CHARS]


def _safe_headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_") and key not in SECRET_HEADERS:
            headers[key[5:].replace("_", "-").title()] = str(value)
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    return headers


def _auth_scheme(environ: dict[str, Any]) -> str | None:
    """Which auth the request carried ('basic', 'bearer'), never the credential itself."""
    scheme = environ.get("HTTP_AUTHORIZATION", "").strip().split(" ", 1)[0]
    return scheme.lower() or None
