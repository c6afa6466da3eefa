"""Send one prepared Heap call over HTTP, retrying only as its Repeat policy allows."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import requests
from urllib3.util.retry import Retry

from webapp.heap.addresses import AddressGuard, Allowlist
from webapp.heap.backoff import RETRY_STATUSES, full_jitter, parse_retry_after, request_was_sent
from webapp.heap.calls import PreparedCall, Repeat
from webapp.heap.connections import GuardedAdapter
from webapp.heap.errors import HeapError, HeapOutcomeUnknown, HeapUnavailable

logger = logging.getLogger(__name__)


class Transport:
    """One `requests.Session` with timeouts, no redirects, vetted addresses, our own retries."""

    def __init__(
        self,
        *,
        timeout: tuple[float, float],
        max_attempts: int,
        backoff_base: float,
        backoff_max: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        allowlist: Allowlist | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._session = requests.Session()
        self._session.headers.update(
            {"User-Agent": "deletion-desk-heap-client/1", "Accept": "application/json"}
        )
        # All retrying is ours and per call (PITFALLS #2): urllib3 must never repeat a POST
        # after a read timeout, nor sleep through a Retry-After of hours.
        # Every connection resolves its host once and refuses non-public addresses that
        # DESK_HEAP_URL_ALLOWLIST does not list (a name that passed the base URL check may
        # resolve to loopback later).
        adapter = GuardedAdapter(
            AddressGuard(allowlist or Allowlist()),
            max_retries=Retry(total=0, read=False, redirect=False),
        )
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def send(
        self,
        call: PreparedCall,
        *,
        auth: tuple[str, str] | None = None,
        bearer: str | None = None,
    ) -> requests.Response:
        """Send `call`; return the last response, or raise if no answer ever came."""
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        attempt = 0
        while True:
            attempt += 1
            started = self._clock()
            try:
                response = self._session.request(
                    call.method,
                    call.url,
                    json=call.json_body,
                    headers=headers,
                    auth=auth,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                sent = request_was_sent(exc)
                self._log_failure(call, exc, sent, started, attempt)
                retryable = call.repeat is Repeat.ALWAYS or (
                    call.repeat is Repeat.UNSENT and not sent
                )
                if retryable and attempt < self.max_attempts:
                    self._sleep(self._backoff(attempt))
                    continue
                raise _transport_error(call, exc, sent) from None
            status = response.status_code
            # Operation, status, duration, attempt: never the URL's query, a header or a body.
            logger.info(
                "heap %s: HTTP %d in %.0f ms (attempt %d/%d)",
                call.operation,
                status,
                (self._clock() - started) * 1000,
                attempt,
                self.max_attempts,
            )
            retryable = status in RETRY_STATUSES and (
                call.repeat is Repeat.ALWAYS or (call.repeat is Repeat.UNSENT and status == 429)
            )
            if not retryable or attempt >= self.max_attempts:
                return response
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self.backoff_max:
                # Blocking a worker longer than we would ever back off is worse than failing:
                # the caller gets HeapRateLimited/HeapUnavailable with .retry_after to schedule.
                return response
            response.close()
            self._sleep(retry_after if retry_after is not None else self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        return full_jitter(attempt, base=self.backoff_base, cap=self.backoff_max, rng=self._rng)

    def _log_failure(
        self,
        call: PreparedCall,
        exc: requests.RequestException,
        sent: bool,
        started: float,
        attempt: int,
    ) -> None:
        # The exception's text holds the URL; its class name says all an operator needs.
        logger.warning(
            "heap %s: %s after %.0f ms (attempt %d/%d, request %s)",
            call.operation,
            type(exc).__name__,
            (self._clock() - started) * 1000,
            attempt,
            self.max_attempts,
            "possibly received" if sent else "not sent",
        )


def _transport_error(call: PreparedCall, exc: requests.RequestException, sent: bool) -> HeapError:
    """Turn a failure without an answer into HeapOutcomeUnknown or HeapUnavailable.

    For a call safe to repeat, "maybe received" changes nothing: the caller may repeat it, so
    it is HeapUnavailable. For the deletion POST (and un-keyed events) it is HeapOutcomeUnknown.
    """
    kind = "timed out" if isinstance(exc, requests.Timeout) else "lost its connection"
    if sent and call.repeat is not Repeat.ALWAYS:
        return HeapOutcomeUnknown(
            f"Heap {call.operation} {kind} after the request was sent; "
            "Heap may or may not have acted on it"
        )
    return HeapUnavailable(f"Heap {call.operation} {kind}; Heap could not be reached")
