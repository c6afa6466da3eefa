"""Heap's payload rules, checked before anything is sent (see shared/heap-api.md).

Every function returns the normalised value that goes on the wire, or raises
`HeapValidationError` naming the field and, inside a list, the 1-based row. Messages never
quote the offending value: it may be personal data, and messages end up in logs and audits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from webapp.heap.errors import HeapValidationError

MAX_DELETION_USERS = 10_000
MAX_BULK_ITEMS = 1000
MAX_IDENTITY_LENGTH = 255
MAX_EVENT_LENGTH = 1024
# Heap: property keys and values "< 1024 characters" (strictly fewer).
MAX_PROPERTY_LENGTH = 1023
MAX_TEXT_LENGTH = 1023
# Heap user ids are JavaScript-safe integers.
MAX_USER_ID = 2**53 - 1

# Identifying with a placeholder merges every user that shares it, irreversibly (Heap cannot
# split users). The documented ones plus the usual serialisation bugs of web front ends.
NON_UNIQUE_IDENTITIES = frozenset(
    {
        "",
        "null",
        "undefined",
        "user",
        "none",
        "nil",
        "anonymous",
        "unknown",
        "0",
        "-1",
        '""',
        "''",
        "nan",
        "n/a",
        "true",
        "false",
        "[object object]",
    }
)

TRACK_FIELDS = frozenset(
    {"event", "identity", "user_id", "properties", "timestamp", "session_id", "idempotency_key"}
)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def normalise_user_id(value: Any, *, row: int | None = None, field: str = "user_id") -> int:
    """Return a Heap user id as an int, from an int or a string of ASCII digits."""
    # bool is an int subclass: True would silently become user 1.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise HeapValidationError(f"{field} must be a whole number", field=field, row=row)
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 64 or not _DIGITS.fullmatch(text):
            raise HeapValidationError(
                f"{field} must be a whole number written with digits only", field=field, row=row
            )
        value = int(text)
    if value < 0:
        raise HeapValidationError(f"{field} must not be negative", field=field, row=row)
    if value > MAX_USER_ID:
        raise HeapValidationError(
            f"{field} is larger than {MAX_USER_ID} (2^53-1)", field=field, row=row
        )
    return value


def validate_identity(value: Any, *, row: int | None = None, field: str = "identity") -> str:
    """Return an identity: a string of 1..255 characters, kept exactly (Heap is case-sensitive)."""
    if not isinstance(value, str):
        raise HeapValidationError(f"{field} must be text", field=field, row=row)
    if not value:
        raise HeapValidationError(f"{field} must not be empty", field=field, row=row)
    if len(value) > MAX_IDENTITY_LENGTH:
        raise HeapValidationError(
            f"{field} is longer than {MAX_IDENTITY_LENGTH} characters", field=field, row=row
        )
    return value


def is_non_unique_identity(value: str) -> bool:
    """True for placeholder values that would merge unrelated users on identify."""
    return value.strip().casefold() in NON_UNIQUE_IDENTITIES


def validate_unique_identity(value: Any, *, row: int | None = None) -> str:
    """Return an identity fit for identify: valid and not a shared placeholder."""
    identity = validate_identity(value, row=row)
    if is_non_unique_identity(identity):
        raise HeapValidationError(
            "identity is a placeholder value shared by many users; identifying with it would "
            "merge unrelated users irreversibly",
            field="identity",
            row=row,
        )
    return identity


def validate_event(value: Any, *, row: int | None = None) -> str:
    """Return an event name of 1..1024 characters."""
    if not isinstance(value, str) or not value:
        raise HeapValidationError("event must be non-empty text", field="event", row=row)
    if len(value) > MAX_EVENT_LENGTH:
        raise HeapValidationError(
            f"event is longer than {MAX_EVENT_LENGTH} characters", field="event", row=row
        )
    return value


def validate_properties(
    value: Any, *, row: int | None = None, required: bool = False
) -> dict[str, str | int | float]:
    """Return a flat property object: text keys, text or number values, each < 1024 chars."""
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise HeapValidationError("properties must be an object", field="properties", row=row)
    if required and not value:
        raise HeapValidationError(
            "properties must contain at least one property", field="properties", row=row
        )
    clean: dict[str, str | int | float] = {}
    for key, item in value.items():
        name = _property_key(key, row)
        clean[name] = _property_value(name, item, row)
    return clean


def _property_key(key: Any, row: int | None) -> str:
    """Check one property name."""
    if isinstance(key, int | float) and not isinstance(key, bool):
        key = str(key)  # JSON object keys are text; json.dumps would do the same
    if not isinstance(key, str) or not key.strip():
        raise HeapValidationError(
            "property names must be non-empty text", field="properties", row=row
        )
    if len(key) > MAX_PROPERTY_LENGTH:
        raise HeapValidationError(
            f"a property name is {len(key)} characters long; Heap allows fewer than 1024",
            field="properties",
            row=row,
        )
    # Heap forbids `id` in any casing (it clashes with its own user id).
    if key.strip().casefold() == "id":
        raise HeapValidationError(
            f"property name '{key}' is reserved by Heap", field=f"properties.{key}", row=row
        )
    return key


def _property_value(key: str, value: Any, row: int | None) -> str | int | float:
    """Check one property value: text or a finite number, shorter than 1024 characters."""
    field = f"properties.{key[:40]}"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise HeapValidationError(
            f"property '{key[:40]}' must be text or a number", field=field, row=row
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise HeapValidationError(
            f"property '{key[:40]}' must be a finite number", field=field, row=row
        )
    if len(str(value)) > MAX_PROPERTY_LENGTH:
        raise HeapValidationError(
            f"property '{key[:40]}' is 1024 characters or longer; Heap allows fewer",
            field=field,
            row=row,
        )
    return value


def email_key_warnings(properties: Mapping[str, Any] | None) -> list[str]:
    """Warn about `Email`-like keys: only lower-case `email` sets Heap's built-in Email."""
    warnings = []
    for key in properties or {}:
        if isinstance(key, str) and key.strip().casefold() == "email" and key != "email":
            warnings.append(
                f"Property '{key}' creates a separate custom property in Heap; "
                "use lower-case 'email' to set Heap's built-in Email property."
            )
    return warnings


def validate_timestamp(value: Any, *, row: int | None = None) -> str | None:
    """Return an ISO 8601 timestamp string, from a string or a tz-aware datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        # A naive datetime is a bug upstream: Heap would read it as UTC whatever was meant.
        if value.tzinfo is None or value.utcoffset() is None:
            raise HeapValidationError(
                "timestamp must carry a time zone", field="timestamp", row=row
            )
        return value.isoformat()
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return value.strip()
    raise HeapValidationError("timestamp must be an ISO 8601 date-time", field="timestamp", row=row)


def validate_optional_text(value: Any, *, field: str, row: int | None = None) -> str | None:
    """Return an optional short text field (session_id, idempotency_key) or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise HeapValidationError(f"{field} must be non-empty text", field=field, row=row)
    if len(value) > MAX_TEXT_LENGTH:
        raise HeapValidationError(f"{field} is 1024 characters or longer", field=field, row=row)
    return value


def validate_account_id(value: Any, *, row: int | None = None) -> str:
    """Return an account id as text (numbers are accepted and sent as text)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise HeapValidationError("account_id must be non-empty text", field="account_id", row=row)
    if len(value) > MAX_PROPERTY_LENGTH:
        raise HeapValidationError(
            "account_id is 1024 characters or longer", field="account_id", row=row
        )
    return value


def validate_list(items: Any, *, field: str, limit: int) -> Sequence[Any]:
    """Check a list of 1..limit items (a bulk body or a deletion's users)."""
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
        raise HeapValidationError(f"{field} must be a list", field=field)
    if not items:
        raise HeapValidationError(f"{field} must contain at least one item", field=field)
    if len(items) > limit:
        raise HeapValidationError(
            f"{field} has {len(items)} items; Heap accepts at most {limit} a request",
            field=field,
        )
    return items


def validate_item(item: Any, *, allowed: Iterable[str], row: int) -> dict[str, Any]:
    """Return a list element as a dict without None values, refusing unknown fields."""
    if not isinstance(item, Mapping):
        raise HeapValidationError("each item must be an object", row=row)
    allowed = frozenset(allowed)
    for key in item:
        if key not in allowed:
            raise HeapValidationError(f"unknown field '{str(key)[:40]}'", field=str(key), row=row)
    # None means "not given": forms and CSV readers produce it for empty cells.
    return {key: value for key, value in item.items() if value is not None}


def validate_deletion_user(item: Any, *, row: int) -> dict[str, int | str]:
    """Return one deletion element: exactly one of user_id (JSON number) / identity."""
    fields = validate_item(item, allowed=("user_id", "identity"), row=row)
    if ("user_id" in fields) == ("identity" in fields):
        raise HeapValidationError(
            "give exactly one of user_id or identity", field="user_id/identity", row=row
        )
    if "user_id" in fields:
        # Heap's example sends the deletion user_id as a JSON number.
        return {"user_id": normalise_user_id(fields["user_id"], row=row)}
    return {"identity": validate_identity(fields["identity"], row=row)}


def validate_deletion_users(users: Any) -> list[dict[str, int | str]]:
    """Return the `users` of a deletion request: 1..10,000 valid elements."""
    items = validate_list(users, field="users", limit=MAX_DELETION_USERS)
    return [validate_deletion_user(item, row=index) for index, item in enumerate(items, 1)]


def validate_track_event(item: Mapping[str, Any], *, row: int | None = None) -> dict[str, Any]:
    """Return one track event as sent: user_id as a string, optional fields only if given."""
    fields = {key: value for key, value in item.items() if value is not None}
    if ("user_id" in fields) == ("identity" in fields):
        raise HeapValidationError(
            "give exactly one of identity or user_id", field="identity/user_id", row=row
        )
    body: dict[str, Any] = {"event": validate_event(fields.get("event"), row=row)}
    if "identity" in fields:
        body["identity"] = validate_identity(fields["identity"], row=row)
    else:
        # Ingestion takes the "string form of an integer" (unlike the deletion API).
        body["user_id"] = str(normalise_user_id(fields["user_id"], row=row))
    if "properties" in fields:
        body["properties"] = validate_properties(fields["properties"], row=row)
    timestamp = validate_timestamp(fields.get("timestamp"), row=row)
    if timestamp is not None:
        body["timestamp"] = timestamp
    for name in ("session_id", "idempotency_key"):
        text = validate_optional_text(fields.get(name), field=name, row=row)
        if text is not None:
            body[name] = text
    return body
