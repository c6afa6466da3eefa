"""When and why a refused deletion request is tried again (429, 5xx, unreachable, bad key).

The reasons are the desk's own words, built from Heap's HTTP status and a fixed error class:
they go into the audit trail, which can never be purged, so no text Heap answered (it may echo
people's identifiers) is ever part of them. Heap's text, redacted, may be added as `detail`
only where it can be purged (a request's or a batch's last error).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from webapp.heap import (
    HeapBadRequest,
    HeapRateLimited,
    HeapUnavailable,
    HeapValidationError,
    error_class,
)

# The longest Retry-After honoured as given; beyond it Heap is asked again a day later.
MAX_RETRY_AFTER_SECONDS = 86_400.0
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 3600.0
_rng = random.Random()  # noqa: S311 - retry jitter, not a secret


def format_retry_time(when: datetime, now: datetime) -> str:
    """'14:05 UTC' today, '2025-03-02 14:05 UTC' on another day."""
    return f"{when:%H:%M} UTC" if when.date() == now.date() else f"{when:%Y-%m-%d %H:%M} UTC"


def backoff(attempt: int, now: datetime) -> datetime:
    """When to retry after `attempt`: half to all of 30 s × 2^(attempt-1), at most 1 h.

    The jitter spreads retries apart; the lower half-bound keeps a retry from coming at once.
    """
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempt - 1, 0))
    return now + timedelta(seconds=_rng.uniform(ceiling / 2, ceiling))


def is_permanent(error: Exception) -> bool:
    """True when repeating the same request cannot succeed (Heap's 400, an invalid payload)."""
    return isinstance(error, HeapBadRequest | HeapValidationError)


def retry_at_for(error: Exception, *, attempt: int, now: datetime) -> datetime:
    """When to try again: Heap's Retry-After if it gave one, else backoff with jitter."""
    retry_after = getattr(error, "retry_after", None)
    if isinstance(error, HeapRateLimited | HeapUnavailable) and retry_after is not None:
        return now + timedelta(seconds=min(max(retry_after, 1.0), MAX_RETRY_AFTER_SECONDS))
    return backoff(attempt, now)


def retry_reason(
    error: Exception, *, retry_at: datetime, now: datetime, detail: str | None = None
) -> str:
    """The plain-language reason a batch waits, with when it tries again.

    Without `detail` it holds no remote text and may be audited; `detail` (Heap's redacted
    text, or the desk's own account of a setup problem) is for the purgeable last error.
    """
    when = format_retry_time(retry_at, now)
    kind = error_class(error)
    status = getattr(error, "status", None)
    said = f" ({detail})" if detail else ""
    if kind == "rate_limited":
        return f"Heap asked us to slow down (429){said}; retrying at {when}"
    if kind == "key_refused":
        answer = detail or (f"HTTP {status}" if status else "no API key is set")
        return (
            f"Heap refused the API key of this environment ({answer}); check the key under "
            f"Environments. Retrying at {when}"
        )
    if kind == "unavailable":
        return f"Heap is unavailable (HTTP {status}){said}; retrying at {when}"
    if kind == "unreachable":
        return f"Heap could not be reached{said}; retrying at {when}"
    if kind == "url_not_allowed":
        return (
            f"The environment's base URL is not allowed{said}; an operator can list its host in "
            f"DESK_HEAP_URL_ALLOWLIST. Retrying at {when}"
        )
    if status:
        return f"Heap answered HTTP {status} ({kind}){said}; retrying at {when}"
    return f"The request could not be sent{said}; retrying at {when}"
