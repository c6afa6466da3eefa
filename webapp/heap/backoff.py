"""Retry timing (full-jitter backoff, Retry-After) and classifying transport failures."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    LocationParseError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

# Statuses worth another try on a call that is safe to repeat.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def full_jitter(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before attempt `attempt + 1`: uniform in [0, min(cap, base * 2^(n-1))]."""
    # Full jitter (AWS architecture blog) spreads retries of many workers apart best.
    return rng.uniform(0, min(cap, base * 2 ** max(attempt - 1, 0)))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Return a Retry-After header (delta-seconds or HTTP-date) in seconds, or None."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        # Not RFC 9110 but seen in the wild ("1.5"); a negative or non-finite wait means nothing.
        return number if math.isfinite(number) and number >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def request_was_sent(exc: requests.RequestException) -> bool:
    """True when the request may have reached Heap before `exc` happened.

    Only failures while connecting prove that Heap never saw the request. A read timeout, or
    a connection dropped or reset after the request was written, leaves it open whether Heap
    acted: requests reports those as ReadTimeout, or as ConnectionError whose reason is a
    urllib3 ReadTimeoutError (raised while reading the body) or ProtocolError
    (RemoteDisconnected, ConnectionResetError). A server that drops the connection before
    processing looks exactly like one that drops it after, so both count as sent.
    """
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        # SSLError surfaces from the handshake, before any request byte is written.
        return False
    if isinstance(exc, requests.ReadTimeout):
        return True
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return False
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    if isinstance(reason, NewConnectionError | ConnectTimeoutError | ClosedPoolError):
        return False
    if isinstance(reason, LocationParseError):
        return False
    if isinstance(reason, ReadTimeoutError | ProtocolError):
        return True
    # ChunkedEncodingError, ContentDecodingError and anything unknown: a response had begun
    # or we cannot tell; claiming "not sent" could make the workflow lose a deletion id.
    return True
