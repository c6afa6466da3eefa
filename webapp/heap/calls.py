"""Build each Heap call (method, URL, exact JSON body) without sending it.

The client sends exactly what these builders return, so a correction's preview is what Heap
receives. Each builder also says whether the call may be repeated automatically.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from webapp.heap.errors import HeapValidationError
from webapp.heap.hosts import HeapHosts
from webapp.heap.validation import (
    MAX_BULK_ITEMS,
    TRACK_FIELDS,
    normalise_user_id,
    validate_account_id,
    validate_deletion_users,
    validate_identity,
    validate_item,
    validate_list,
    validate_properties,
    validate_timestamp,
    validate_track_event,
    validate_unique_identity,
)

TOKEN_PATH = "/api/public/v0/auth_token"  # noqa: S105 - a path, not a secret
DELETION_PATH = "/api/public/v0/user_deletion"
STATUS_PATH = "/api/public/v0/deletion_status/"


class Repeat(enum.StrEnum):
    """When the client may repeat a call on its own."""

    # Repeating has no further effect: token, status GET, keyed events, overwriting properties.
    ALWAYS = "always"
    # Only when Heap surely did not process it (429, connection refused): un-keyed events
    # would be counted twice if a 5xx or a timeout came after Heap had stored them.
    UNSENT = "unsent"
    # The deletion POST: every repeat creates another request; the workflow decides.
    NEVER = "never"


@dataclass(frozen=True)
class PreparedCall:
    """One Heap call as it will be sent."""

    operation: str
    method: str
    url: str
    json_body: dict[str, Any] | None
    api: str
    repeat: Repeat

    def preview(self) -> str:
        """Return the body as indented JSON, for the corrections forms."""
        if self.json_body is None:
            return ""
        return json.dumps(self.json_body, indent=2, ensure_ascii=False)


def _track(
    *,
    event: str,
    identity: str | None = None,
    user_id: int | str | None = None,
    properties: Mapping[str, Any] | None = None,
    timestamp: Any = None,
    session_id: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[str, dict[str, Any], Repeat]:
    fields = {
        "event": event,
        "identity": identity,
        "user_id": user_id,
        "properties": properties,
        "timestamp": timestamp,
        "session_id": session_id,
        "idempotency_key": idempotency_key,
    }
    body = validate_track_event(fields)
    repeat = Repeat.ALWAYS if "idempotency_key" in body else Repeat.UNSENT
    return "/api/track", body, repeat


def _bulk_track(*, events: list[Mapping[str, Any]]) -> tuple[str, dict[str, Any], Repeat]:
    items = validate_list(events, field="events", limit=MAX_BULK_ITEMS)
    clean = [
        validate_track_event(validate_item(item, allowed=TRACK_FIELDS, row=row), row=row)
        for row, item in enumerate(items, 1)
    ]
    # Heap drops a repeat with a known idempotency key, so only a fully keyed batch is safe.
    keyed = all("idempotency_key" in item for item in clean)
    return "/api/track", {"events": clean}, Repeat.ALWAYS if keyed else Repeat.UNSENT


def _identify(
    *, user_id: int | str, identity: str, timestamp: Any = None
) -> tuple[str, dict[str, Any], Repeat]:
    body: dict[str, Any] = {
        "user_id": str(normalise_user_id(user_id)),
        "identity": validate_unique_identity(identity),
    }
    stamp = validate_timestamp(timestamp)
    if stamp is not None:
        body["timestamp"] = stamp
    # Identify is idempotent in effect: a second identical link is a no-op under Heap's
    # one-identity-per-user_id rule.
    return "/api/v1/identify", body, Repeat.ALWAYS


def _add_user_properties(
    *, identity: str, properties: Mapping[str, Any]
) -> tuple[str, dict[str, Any], Repeat]:
    body = {
        "identity": validate_identity(identity),
        "properties": validate_properties(properties, required=True),
    }
    # Values overwrite: sending the same values twice leaves the same state.
    return "/api/add_user_properties", body, Repeat.ALWAYS


def _bulk_add_user_properties(
    *, users: list[Mapping[str, Any]]
) -> tuple[str, dict[str, Any], Repeat]:
    items = validate_list(users, field="users", limit=MAX_BULK_ITEMS)
    clean = []
    for row, item in enumerate(items, 1):
        fields = validate_item(item, allowed=("identity", "properties"), row=row)
        clean.append(
            {
                "identity": validate_identity(fields.get("identity"), row=row),
                "properties": validate_properties(fields.get("properties"), row=row, required=True),
            }
        )
    return "/api/add_user_properties", {"users": clean}, Repeat.ALWAYS


def _add_account_properties(
    *, account_id: str | int, properties: Mapping[str, Any]
) -> tuple[str, dict[str, Any], Repeat]:
    # Heap refuses a body holding both account_id and accounts: the two builders are separate.
    body = {
        "account_id": validate_account_id(account_id),
        "properties": validate_properties(properties, required=True),
    }
    return "/api/add_account_properties", body, Repeat.ALWAYS


def _bulk_add_account_properties(
    *, accounts: list[Mapping[str, Any]]
) -> tuple[str, dict[str, Any], Repeat]:
    items = validate_list(accounts, field="accounts", limit=MAX_BULK_ITEMS)
    clean = []
    for row, item in enumerate(items, 1):
        fields = validate_item(item, allowed=("account_id", "properties"), row=row)
        clean.append(
            {
                "account_id": validate_account_id(fields.get("account_id"), row=row),
                "properties": validate_properties(fields.get("properties"), row=row, required=True),
            }
        )
    return "/api/add_account_properties", {"accounts": clean}, Repeat.ALWAYS


_INGESTION: dict[str, Callable[..., tuple[str, dict[str, Any], Repeat]]] = {
    "track": _track,
    "bulk_track": _bulk_track,
    "identify": _identify,
    "add_user_properties": _add_user_properties,
    "bulk_add_user_properties": _bulk_add_user_properties,
    "add_account_properties": _add_account_properties,
    "bulk_add_account_properties": _bulk_add_account_properties,
}
OPERATIONS = (*_INGESTION, "delete_users", "deletion_status")


def build_call(operation: str, *, hosts: HeapHosts, app_id: str, **kwargs: Any) -> PreparedCall:
    """Validate the arguments of `operation` and return the call that would be sent."""
    if operation in _INGESTION:
        path, body, repeat = _INGESTION[operation](**kwargs)
        # Ingestion authenticates by app_id in the body, always as a string (ids pass 2^31).
        body = {"app_id": app_id, **body}
        return PreparedCall(operation, "POST", hosts.ingestion + path, body, "ingestion", repeat)
    if operation == "delete_users":
        return _delete_users(hosts, **kwargs)
    if operation == "deletion_status":
        return _deletion_status(hosts, **kwargs)
    raise HeapValidationError(f"unknown Heap operation '{operation}'", field="operation")


def _delete_users(hosts: HeapHosts, *, users: list[Mapping[str, Any]]) -> PreparedCall:
    body = {"users": validate_deletion_users(users)}
    return PreparedCall(
        "delete_users", "POST", hosts.deletion + DELETION_PATH, body, "deletion", Repeat.NEVER
    )


def _deletion_status(hosts: HeapHosts, *, deletion_request_id: str) -> PreparedCall:
    url = hosts.deletion + STATUS_PATH + quote(_request_id(deletion_request_id), safe="")
    return PreparedCall("deletion_status", "GET", url, None, "deletion", Repeat.ALWAYS)


def token_call(hosts: HeapHosts) -> PreparedCall:
    """Return the auth token call (Basic auth is added by the client, never previewed)."""
    return PreparedCall(
        "auth_token", "POST", hosts.deletion + TOKEN_PATH, None, "deletion", Repeat.ALWAYS
    )


def _request_id(value: Any) -> str:
    """Check a deletion request id before it goes into a URL path."""
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise HeapValidationError(
            "deletion_request_id must be non-empty text", field="deletion_request_id"
        )
    return value.strip()


__all__ = [
    "OPERATIONS",
    "PreparedCall",
    "Repeat",
    "build_call",
    "token_call",
]
