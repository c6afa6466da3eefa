"""The desk's Heap client: ingestion calls and the GDPR user deletion API.

Knows nothing of Flask or the database. One `requests.Session`, a (connect, read) timeout on
every call, no redirects, and retries only where repeating a call cannot change its effect.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from webapp.heap.addresses import Allowlist
from webapp.heap.backoff import parse_retry_after
from webapp.heap.calls import PreparedCall, build_call, token_call
from webapp.heap.errors import (
    HeapAuthError,
    HeapError,
    HeapOutcomeUnknown,
    HeapUnavailable,
    HeapURLNotAllowed,
    HeapValidationError,
    error_for_status,
    parse_error_message,
)
from webapp.heap.hosts import HeapHosts, check_base_url, is_heap_host, resolve_hosts
from webapp.heap.results import DeletionAccepted, DeletionStatus, IngestionResult
from webapp.heap.transport import Transport

logger = logging.getLogger(__name__)

TOKEN_TTL = 300.0
# Refresh this long before Heap's 5-minute expiry, so a token never dies mid-call.
TOKEN_SAFETY_MARGIN = 30.0
_APP_ID = re.compile(r"[0-9]{1,30}", re.ASCII)
# What Heap's ids and statuses look like (a uuid; "pending", "complete"): anything else is not
# an answer the desk records, let alone audits.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", re.ASCII)
_STATUS = re.compile(r"[A-Za-z][A-Za-z0-9 _.,:;()/-]{0,63}", re.ASCII)


class HeapClient:
    """Talks to one Heap environment.

    The token cache is locked, so scheduler threads may share a client. Worst case, one call
    takes max_attempts x (connect + read timeout) plus the backoff sleeps: keep both small
    where a job must stay a short tick (PITFALLS #13).
    """

    def __init__(
        self,
        *,
        app_id: str,
        api_key: str | None = None,
        region: str = "us",
        base_url: str | None = None,
        timeout: tuple[float, float] = (5, 30),
        allowlist: Iterable[str] = (),
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 30,
        token_ttl: float = TOKEN_TTL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        app_text = str(app_id).strip() if isinstance(app_id, str | int) else ""
        if isinstance(app_id, bool) or not _APP_ID.fullmatch(app_text):
            raise HeapValidationError(
                "app_id must be Heap's numeric environment id", field="app_id"
            )
        if len(timeout) != 2 or any(t <= 0 for t in timeout):
            raise ValueError("timeout must be a (connect, read) pair of positive seconds")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.app_id = app_text
        self._api_key = api_key or None
        checked = check_base_url(base_url, allowlist) if base_url else None
        self.hosts: HeapHosts = resolve_hosts(region, checked)
        try:
            allowed = Allowlist.parse(allowlist)
        except ValueError as exc:
            raise HeapURLNotAllowed(f"DESK_HEAP_URL_ALLOWLIST: {exc}") from None
        # Only Heap's own hosts have their error texts read; any other host's answer is
        # reduced to its HTTP status, never shown or stored (it may be anything at all).
        self.answers_are_heaps = all(
            is_heap_host(urlsplit(url).hostname)
            for url in (self.hosts.ingestion, self.hosts.deletion)
        )
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self.token_ttl = float(token_ttl)
        self._clock = clock
        self._token_value: str | None = None
        self._token_fetched_at = 0.0
        self._token_lock = threading.Lock()
        self._transport = Transport(
            timeout=self.timeout,
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            clock=clock,
            sleep=sleep,
            rng=rng,
            allowlist=allowed,
        )

    def __repr__(self) -> str:
        return f"HeapClient(app_id={self.app_id!r}, hosts={self.hosts!r})"

    def __enter__(self) -> HeapClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._transport.close()

    # ----- building ---------------------------------------------------------------------
    def build_request(self, operation: str, **kwargs: Any) -> PreparedCall:
        """Validate and return the exact call `operation` would send, without sending it."""
        return build_call(operation, hosts=self.hosts, app_id=self.app_id, **kwargs)

    # ----- deletion API ----------------------------------------------------------------
    def fetch_token(self) -> str:
        """Fetch a fresh access token (HTTP Basic app_id:api_key) and cache it in memory."""
        with self._token_lock:
            return self._fetch_token_locked()

    def test_connection(self) -> bool:
        """Fetch a fresh token to prove the credentials work; raise a HeapError otherwise."""
        self.fetch_token()
        return True

    def delete_users(self, users: list[Mapping[str, Any]]) -> DeletionAccepted:
        """Submit one deletion request (never repeated automatically: a repeat is a new one)."""
        call = self.build_request("delete_users", users=users)
        response = self._deletion_call(call)
        if 200 <= response.status_code < 300:
            data = _json_object(response)
            request_id = data.get("deletion_request_id") if data else None
            if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
                # Accepted, but we cannot know which request it created: the workflow must
                # treat this like a lost answer, not like a refusal.
                raise HeapOutcomeUnknown(
                    "Heap accepted the deletion but its answer carried no deletion_request_id "
                    "(none, or not shaped like one)",
                    status=response.status_code,
                )
            location = data.get("deletion_request_location")
            status = data.get("status")
            return DeletionAccepted(
                deletion_request_id=request_id,
                location=location if _is_location_of(location, request_id) else None,
                status=status
                if isinstance(status, str) and _STATUS.fullmatch(status)
                else "pending",
            )
        raise self._error_for(response, call)

    def deletion_status(self, deletion_request_id: str) -> DeletionStatus:
        """Return the status of a deletion request; HeapNotFound if Heap does not know it."""
        call = self.build_request("deletion_status", deletion_request_id=deletion_request_id)
        response = self._deletion_call(call)
        if response.status_code == 200:
            data = _json_object(response)
            status = data.get("status") if data else None
            if not isinstance(status, str) or not _STATUS.fullmatch(status):
                raise HeapUnavailable(
                    "Heap's status answer carried no status (none, or not a word)", status=200
                )
            returned = data.get("deletion_request_id")
            return DeletionStatus(
                deletion_request_id=returned
                if isinstance(returned, str) and _REQUEST_ID.fullmatch(returned)
                else deletion_request_id,
                status=status,
            )
        raise self._error_for(response, call)

    # ----- ingestion API ---------------------------------------------------------------
    def track(
        self,
        *,
        event: str,
        identity: str | None = None,
        user_id: int | str | None = None,
        properties: Mapping[str, Any] | None = None,
        timestamp: Any = None,
        session_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> IngestionResult:
        """Track one event for an identity or (exclusively) an anonymous user_id."""
        call = self.build_request(
            "track",
            event=event,
            identity=identity,
            user_id=user_id,
            properties=properties,
            timestamp=timestamp,
            session_id=session_id,
            idempotency_key=idempotency_key,
        )
        return self._ingest(call)

    def bulk_track(self, events: list[Mapping[str, Any]]) -> IngestionResult:
        """Track up to 1000 events in one request."""
        return self._ingest(self.build_request("bulk_track", events=events))

    def identify(
        self, *, user_id: int | str, identity: str, timestamp: Any = None
    ) -> IngestionResult:
        """Attach an anonymous Heap user_id to an identity (refuses placeholder identities)."""
        call = self.build_request(
            "identify", user_id=user_id, identity=identity, timestamp=timestamp
        )
        return self._ingest(call)

    def add_user_properties(
        self, *, identity: str, properties: Mapping[str, Any]
    ) -> IngestionResult:
        """Set properties on one identified user (values overwrite)."""
        call = self.build_request("add_user_properties", identity=identity, properties=properties)
        return self._ingest(call)

    def bulk_add_user_properties(self, users: list[Mapping[str, Any]]) -> IngestionResult:
        """Set properties on up to 1000 users: [{"identity", "properties"}, ...]."""
        return self._ingest(self.build_request("bulk_add_user_properties", users=users))

    def add_account_properties(
        self, *, account_id: str | int, properties: Mapping[str, Any]
    ) -> IngestionResult:
        """Set properties on one account."""
        call = self.build_request(
            "add_account_properties", account_id=account_id, properties=properties
        )
        return self._ingest(call)

    def bulk_add_account_properties(self, accounts: list[Mapping[str, Any]]) -> IngestionResult:
        """Set properties on up to 1000 accounts: [{"account_id", "properties"}, ...]."""
        return self._ingest(self.build_request("bulk_add_account_properties", accounts=accounts))

    # ----- internals -------------------------------------------------------------------
    def _ingest(self, call: PreparedCall) -> IngestionResult:
        response = self._transport.send(call)
        # Heap answers {} / OK / nothing on success: only the status code counts.
        if 200 <= response.status_code < 300:
            body = response.text if self.answers_are_heaps else ""
            return IngestionResult(call.operation, response.status_code, body)
        raise self._error_for(response, call)

    def _token(self) -> str:
        """Return the cached token unless it is within the safety margin of expiring."""
        with self._token_lock:
            margin = min(TOKEN_SAFETY_MARGIN, self.token_ttl / 2)
            age = self._clock() - self._token_fetched_at
            if self._token_value is not None and age < self.token_ttl - margin:
                return self._token_value
            return self._fetch_token_locked()

    def _fetch_token_locked(self) -> str:
        if not self._api_key:
            raise HeapAuthError("no api_key is configured for this Heap environment")
        self._token_value = None
        call = token_call(self.hosts)
        fetched_at = self._clock()
        response = self._transport.send(call, auth=(self.app_id, self._api_key))
        if response.status_code != 200:
            raise self._error_for(response, call)
        data = _json_object(response)
        token = data.get("access_token") if data else None
        if not isinstance(token, str) or not token:
            raise HeapUnavailable("Heap's token answer carried no access_token", status=200)
        self._token_value, self._token_fetched_at = token, fetched_at
        return token

    def _forget_token(self, token: str) -> None:
        with self._token_lock:
            if self._token_value == token:
                self._token_value = None

    def _deletion_call(self, call: PreparedCall) -> requests.Response:
        """Send a Bearer call; on a 401, fetch a new token and repeat the call once.

        Repeating is safe even for the deletion POST: a 401 means Heap did not accept it.
        """
        token = self._token()
        response = self._transport.send(call, bearer=token)
        if response.status_code == 401:
            logger.info("heap %s: token refused, fetching a new one", call.operation)
            self._forget_token(token)
            response = self._transport.send(call, bearer=self._token())
        return response

    def _error_for(self, response: requests.Response, call: PreparedCall) -> HeapError:
        """Map a non-success answer to the matching HeapError, with our secrets redacted.

        Only Heap's own hosts have their text read: another host's answer (a sandbox, or
        whatever else listens where a base URL points) is reduced to its status.
        """
        if self.answers_are_heaps:
            message = parse_error_message(
                response.text,
                status=response.status_code,
                content_type=response.headers.get("Content-Type", ""),
            )
        else:
            message = f"the server answered HTTP {response.status_code}"
        return error_for_status(
            call.operation,
            response.status_code,
            self._redact(message),
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    def _redact(self, text: str) -> str:
        """Remove our secrets from a text Heap sent back, should it ever echo them."""
        for secret in (self._api_key, self._token_value):
            if secret:
                text = text.replace(secret, "[redacted]")
        return text


def _is_location_of(location: object, request_id: str) -> bool:
    """True for a short http(s) URL ending in the request's id: a location, not free text."""
    return (
        isinstance(location, str)
        and len(location) <= 500
        and location.startswith(("https://", "http://"))
        and location.endswith("/" + request_id)
        and not any(ch.isspace() for ch in location)
    )


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    """Return the body as a JSON object, or None if it is not one."""
    try:
        data = json.loads(response.text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
