"""One place that turns errors into pages (errors/<code>.html) or JSON under /api/."""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from webapp.db import close_session

log = logging.getLogger(__name__)

PAGES = {400, 401, 403, 404, 405, 413, 429, 500, 503}
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}
MESSAGES = {
    401: "Sign in, or send a valid API token as 'Authorization: Bearer <token>'.",
    403: "Your role does not allow this.",
    404: "There is nothing here.",
}


def api_error(status: int, message: str, code: str | None = None):
    """The API's error body: {"error": {"code", "message"}}."""
    return jsonify(error={"code": code or CODES.get(status, "error"), "message": message}), status


def _render(status: int, message: str):
    if request.path.startswith("/api/"):
        return api_error(status, message)
    template = f"errors/{status if status in PAGES else 400}.html"
    return render_template(template, status=status, message=message), status


def _too_large() -> str:
    """The 413 message, naming the limit so the person knows how far to split the file."""
    limit = current_app.config["DESK_UPLOAD_MAX_BYTES"]
    size = f"{round(limit / 1_048_576, 1):g} MB" if limit >= 1_048_576 else f"{limit // 1024} KB"
    return (
        f"The upload is larger than the desk accepts: at most {size} per file or form. "
        "Split the list into smaller files and upload each."
    )


def handle_http_error(error: HTTPException):
    """Every HTTP error as a page or JSON, with a plain message.

    A 405 keeps werkzeug's Allow header (RFC 9110 §15.5.6 requires it) and names the methods.
    """
    status = error.code or 500
    message = None
    allowed = sorted(getattr(error, "valid_methods", None) or [])
    if error.description == type(error).description:  # werkzeug's generic text: say more
        message = _too_large() if status == 413 else MESSAGES.get(status)
        if status == 405 and allowed:
            message = f"This address answers only {', '.join(allowed)}."
    body, status = _render(status, message or error.description)
    response = make_response(body, status)
    if status == 405 and allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response


def handle_csrf_error(error: CSRFError):
    """A form posted without (or with a stale) CSRF token changes nothing."""
    return _render(400, "The form expired or was not sent from the desk. Reload it and try again.")


def handle_unexpected(error: Exception):
    """Anything else: roll back first, log with the traceback, show a calm 500."""
    close_session()
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _render(500, InternalServerError.description)


def unavailable_on(app: Flask, *exceptions: type[Exception]) -> None:
    """Answer these errors with a 503 that says why (a service the desk needs is missing),
    wherever they are raised: never a 500, never half a download."""

    def handle_unavailable(error: Exception):
        close_session()
        log.warning("answered 503 on %s %s: %s", request.method, request.path, error)
        return _render(503, str(error))

    for exception in exceptions:
        app.register_error_handler(exception, handle_unavailable)


def init_app(app: Flask) -> None:
    """Register the handlers."""
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
