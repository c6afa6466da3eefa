"""The contract rules the sandbox enforces on request bodies, as Heap would (heap-api.md).

Written independently of `webapp.heap.validation` on purpose: a fake that shared the client's
checks could not catch the client's mistakes.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DELETION_USERS = 10_000
MAX_BULK = 1000
MAX_IDENTITY = 255
MAX_EVENT = 1024
MAX_PROPERTY = 1024
MAX_USER_ID = 2**53 - 1


class ContractViolation(Exception):
    """A request breaks Heap's contract: answered with a 400 and a readable message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_json(raw: bytes) -> dict[str, Any]:
    """Return the body as a JSON object."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ContractViolation("Invalid JSON body") from exc
    if not isinstance(body, dict):
        raise ContractViolation("The JSON body must be an object")
    return body


def app_id(body: dict[str, Any]) -> str:
    """Return the body's app_id: any numeric string (a wrong one is accepted silently)."""
    value = body.get("app_id")
    if value is None or value == "":
        raise ContractViolation("app_id is required")
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise ContractViolation("app_id must be a string of digits")
    return value


def identity(value: Any, where: str = "") -> str:
    """Return a valid identity (1..255 characters)."""
    if not isinstance(value, str) or not value:
        raise ContractViolation(f"{where}identity must be a non-empty string")
    if len(value) > MAX_IDENTITY:
        raise ContractViolation(f"{where}identity is longer than {MAX_IDENTITY} characters")
    return value


def user_id(value: Any, where: str = "") -> str:
    """Return a user_id (JSON number or string of digits, 0..2^53-1) in its string form."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ContractViolation(f"{where}user_id must be an integer")
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > 20 or int(text) > MAX_USER_ID:
        raise ContractViolation(f"{where}user_id must be an integer between 0 and 2^53-1")
    return str(int(text))


def event_name(value: Any, where: str = "") -> str:
    """Return an event name of 1..1024 characters."""
    if not isinstance(value, str) or not value:
        raise ContractViolation(f"{where}event is required and must be a non-empty string")
    if len(value) > MAX_EVENT:
        raise ContractViolation(f"{where}event is longer than {MAX_EVENT} characters")
    return value


def properties(value: Any, where: str = "", *, required: bool = False) -> dict[str, Any]:
    """Return properties as Heap stores them: arrays joined with `||`, values cut at 1024."""
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise ContractViolation(f"{where}properties must be an object")
    stored: dict[str, Any] = {}
    for key, item in value.items():
        if key.strip().lower() == "id":
            raise ContractViolation(f"{where}property name '{key}' is not allowed")
        if len(key) >= MAX_PROPERTY:
            raise ContractViolation(f"{where}property names must be shorter than 1024 characters")
        if isinstance(item, list) and all(_scalar(part) for part in item):
            item = "||".join(str(part) for part in item)
        if not _scalar(item):
            raise ContractViolation(f"{where}property '{key}' must be a string or a number")
        stored[key] = item[:MAX_PROPERTY] if isinstance(item, str) else item
    return stored


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _single_or_bulk(body: dict[str, Any], single: str, bulk: str) -> list[tuple[str, Any]]:
    """Return (where, item) pairs for a single body or a bulk list, never both in one body."""
    if single in body and bulk in body:
        raise ContractViolation(f"Send either {single} or {bulk}, not both")
    if bulk in body:
        items = body[bulk]
        if not isinstance(items, list) or not items:
            raise ContractViolation(f"{bulk} must be a non-empty array")
        if len(items) > MAX_BULK:
            raise ContractViolation(f"{bulk} has {len(items)} items; the maximum is {MAX_BULK}")
        for item in items:
            if not isinstance(item, dict):
                raise ContractViolation(f"every item of {bulk} must be an object")
        return [(f"{bulk}[{index}]: ", item) for index, item in enumerate(items)]
    return [("", body)]


def track_events(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the events of a track or bulk track body, each checked."""
    events = []
    for where, item in _single_or_bulk(body, "event", "events"):
        has_identity = item.get("identity") is not None
        if has_identity == (item.get("user_id") is not None):
            raise ContractViolation(f"{where}send exactly one of identity or user_id")
        event = {
            "event": event_name(item.get("event"), where),
            "properties": properties(item.get("properties"), where),
            "timestamp": item.get("timestamp"),
            "session_id": item.get("session_id"),
            "idempotency_key": item.get("idempotency_key"),
        }
        if has_identity:
            event["identity"] = identity(item["identity"], where)
        else:
            event["user_id"] = user_id(item["user_id"], where)
        events.append(event)
    return events


def identify_args(body: dict[str, Any]) -> tuple[str, str]:
    """Return (user_id, identity) of an identify body; both are required."""
    if body.get("user_id") is None or body.get("identity") is None:
        raise ContractViolation("identify needs both user_id and identity")
    return user_id(body["user_id"]), identity(body["identity"])


def user_property_items(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Return (identity, properties) pairs of a single or bulk add_user_properties body."""
    items = []
    for where, item in _single_or_bulk(body, "identity", "users"):
        props = properties(item.get("properties"), where, required=True)
        items.append((identity(item.get("identity"), where), props))
    return items


def account_property_items(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Return (account_id, properties) pairs of a single or bulk add_account_properties body."""
    items = []
    for where, item in _single_or_bulk(body, "account_id", "accounts"):
        account = item.get("account_id")
        if isinstance(account, int) and not isinstance(account, bool):
            account = str(account)
        if not isinstance(account, str) or not account:
            raise ContractViolation(f"{where}account_id is required")
        items.append((account, properties(item.get("properties"), where, required=True)))
    return items


def deletion_users(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the users of a deletion body: 1..10,000, each exactly one of user_id/identity."""
    users = body.get("users")
    if not isinstance(users, list) or not users:
        raise ContractViolation("users must be a non-empty array")
    if len(users) > MAX_DELETION_USERS:
        raise ContractViolation(
            f"users has {len(users)} entries; at most {MAX_DELETION_USERS} are allowed"
        )
    clean = []
    for index, item in enumerate(users):
        where = f"users[{index}]: "
        if not isinstance(item, dict) or ("user_id" in item) == ("identity" in item):
            raise ContractViolation(f"{where}each user needs exactly one of user_id or identity")
        if "user_id" in item:
            clean.append({"user_id": int(user_id(item["user_id"], where))})
        else:
            clean.append({"identity": identity(item["identity"], where)})
    return clean
