"""Typed errors raised by the Heap client, and the parser for Heap's error bodies."""

from __future__ import annotations

import json

# Heap's error text is shown to officers (never put in the audit trail): keep it short.
MAX_MESSAGE_LENGTH = 500


class HeapError(Exception):
    """Base class: `.message` is safe to show and log (never a token or api key)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message


class HeapValidationError(HeapError, ValueError):
    """A payload breaks Heap's contract; nothing was sent."""

    def __init__(self, message: str, *, field: str | None = None, row: int | None = None) -> None:
        # Rows are 1-based, as an officer counts lines in a form or a CSV file.
        text = f"row {row}: {message}" if row is not None else message
        super().__init__(text)
        self.field = field
        self.row = row
        self.reason = message


class HeapURLNotAllowed(HeapError, ValueError):
    """A base URL points somewhere the desk must not send credentials or personal data."""


class HeapAuthError(HeapError):
    """Heap refused the credentials or the token (401/403), or none are configured."""


class HeapBadRequest(HeapError):
    """Heap rejected the request as malformed (400); repeating it will not help."""


class HeapNotFound(HeapError):
    """Heap does not know the resource (404), e.g. a deletion request of another account."""


class HeapRateLimited(HeapError):
    """Heap said 429; `.retry_after` is the wait it asked for in seconds, if it said."""

    def __init__(
        self, message: str, *, status: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class HeapUnavailable(HeapError):
    """Heap could not be reached or answered unexpectedly; the call was not accepted."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class HeapOutcomeUnknown(HeapError):
    """A non-repeatable call was sent but no answer arrived: Heap may or may not have acted."""


def error_class(error: BaseException) -> str:
    """A fixed name for what went wrong: what the audit trail records instead of Heap's text.

    Heap's text may echo what it was sent (people's identifiers), and a host that is not Heap's
    may answer anything at all; the trail, which can never be purged, keeps only this and the
    HTTP status.
    """
    for kind, name in _CLASSES:
        if isinstance(error, kind):
            return name
    if isinstance(error, HeapUnavailable):
        return "unavailable" if error.status else "unreachable"
    return "not_sent" if isinstance(error, HeapError) else "desk_error"


_CLASSES: tuple[tuple[type[HeapError], str], ...] = (
    (HeapRateLimited, "rate_limited"),
    (HeapAuthError, "key_refused"),
    (HeapBadRequest, "bad_request"),
    (HeapURLNotAllowed, "url_not_allowed"),
    (HeapValidationError, "invalid_payload"),
    (HeapNotFound, "not_found"),
    (HeapOutcomeUnknown, "no_answer"),
)


def error_for_status(
    operation: str, status: int, message: str, *, retry_after: float | None = None
) -> HeapError:
    """Return the HeapError for a non-success HTTP status of `operation`."""
    what = f"Heap {operation}"
    if 300 <= status < 400:
        return HeapUnavailable(
            f"{what} answered with a redirect (HTTP {status}); redirects are not followed",
            status=status,
        )
    if status in (400, 413, 422):
        return HeapBadRequest(f"{what} was rejected: {message}", status=status)
    if status in (401, 403):
        return HeapAuthError(f"{what} was refused (HTTP {status}): {message}", status=status)
    if status == 404:
        return HeapNotFound(f"{what}: not found: {message}", status=status)
    if status == 429:
        return HeapRateLimited(
            f"{what} was rate limited: {message}", status=status, retry_after=retry_after
        )
    # 5xx and anything unexpected: Heap did not accept the call.
    return HeapUnavailable(
        f"{what} failed (HTTP {status}): {message}", status=status, retry_after=retry_after
    )


def parse_error_message(body: str, *, status: int | None = None, content_type: str = "") -> str:
    """Return the human-readable message of a Heap error body, whatever its shape."""
    text = (body or "").strip()
    message: str | None = None
    if text:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            message = _message_from_json(data)
        elif data is None and not _looks_like_html(text, content_type):
            # Ingestion 400s are text/plain; a proxy's HTML error page is noise, not a message.
            message = text
    if not message:
        message = f"HTTP {status}" if status is not None else "no error message"
    message = " ".join(message.split())
    if len(message) > MAX_MESSAGE_LENGTH:
        message = message[: MAX_MESSAGE_LENGTH - 1] + "…"
    return message


def _message_from_json(data: dict) -> str | None:
    """Read the three shapes Heap's own pages show: err.message, error, message."""
    err = data.get("err")
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return err["message"]
    if isinstance(err, str):
        return err
    error = data.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    if isinstance(data.get("message"), str):
        return data["message"]
    return None


def _looks_like_html(text: str, content_type: str) -> bool:
    """True for HTML bodies (load balancer pages) that carry no usable message."""
    return "html" in content_type.lower() or text.lstrip().startswith("<")
