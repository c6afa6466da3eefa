"""Turn a correction's input into the exact Heap calls, checking Heap's rules first.

Pure: no database, no HTTP. The calls come from `HeapClient.build_request`, so the preview an
officer sees is byte for byte what is sent. Inputs have the shapes of heap-api.md's bodies (the
API's and the forms' alike); bulk lists may be of any size and are cut into requests of 1000.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from webapp.corrections.bulk import CHUNK_SIZE, chunks
from webapp.corrections.checks import (
    Checker,
    CorrectionInputError,
    EnvironmentConflict,
    Named,
    Notice,
    Plan,
    email_notices,
    fields_of,
    identity_of,
    no_control,
    properties_of,
)
from webapp.heap import HeapClient
from webapp.heap import validation as rules
from webapp.models import CorrectionOperation as Op

__all__ = ["FAMILIES", "CorrectionInputError", "Named", "Notice", "Plan", "plan"]

FAMILIES = ("identify", "user-properties", "account-properties", "link-account", "events")


# ----- single operations --------------------------------------------------------------------
def _identify(client: HeapClient, data: Mapping[str, Any], **_: Any) -> Plan:
    fields = fields_of(data, {"user_id", "identity", "timestamp"})
    check = Checker()
    if "user_id" not in fields:
        check.add("Enter the Heap user_id (the anonymous user's numeric id).")
    user_id = check(rules.normalise_user_id, fields["user_id"]) if "user_id" in fields else None
    identity = identity_of(check, fields.get("identity"))
    if identity is not None:
        identity = check(rules.validate_unique_identity, identity)
    check(rules.validate_timestamp, fields.get("timestamp"))
    check.done()
    call = client.build_request(
        "identify", user_id=user_id, identity=identity, timestamp=fields.get("timestamp")
    )
    named = [Named("identity", identity), Named("user_id", str(user_id))]
    return Plan("identify", Op.IDENTIFY, [call], 1, named)


def _user_properties(client: HeapClient, data: Mapping[str, Any], **_: Any) -> Plan:
    if "users" in data:
        return _bulk_users(client, data)
    fields = fields_of(data, {"identity", "properties"})
    check = Checker()
    identity = identity_of(check, fields.get("identity"))
    properties = properties_of(check, fields.get("properties"), row=None)
    check.done()
    call = client.build_request("add_user_properties", identity=identity, properties=properties)
    notices = email_notices([properties])
    return Plan(
        "user-properties", Op.USER_PROPERTIES, [call], 1, [Named("identity", identity)], notices
    )


def _account_properties(client: HeapClient, data: Mapping[str, Any], **_: Any) -> Plan:
    if "accounts" in data:
        return _bulk_accounts(client, data)
    fields = fields_of(data, {"account_id", "properties"})
    check = Checker()
    if "account_id" not in fields:
        check.add("Enter the account_id.")
    account_id = check(rules.validate_account_id, fields.get("account_id", ""))
    no_control(check, account_id, "account_id")
    properties = properties_of(check, fields.get("properties"), row=None)
    check.done()
    call = client.build_request(
        "add_account_properties", account_id=account_id, properties=properties
    )
    return Plan("account-properties", Op.ACCOUNT_PROPERTIES, [call], 1)


def _link_account(
    client: HeapClient, data: Mapping[str, Any], *, account_property: str | None, **_: Any
) -> Plan:
    if not account_property:
        raise EnvironmentConflict(
            "This environment has no Account ID property configured, so users cannot be "
            "linked to accounts. An admin sets it on the environment (e.g. “account_id”), "
            "matching the user property chosen as Account ID in Heap."
        )
    fields = fields_of(data, {"identity", "account_id"})
    check = Checker()
    identity = identity_of(check, fields.get("identity"))
    if "account_id" not in fields:
        check.add("Enter the account_id to link the user to.")
    account_id = check(rules.validate_account_id, fields.get("account_id", ""))
    no_control(check, account_id, "account_id")
    check.done()
    properties = {account_property: account_id}
    call = client.build_request("add_user_properties", identity=identity, properties=properties)
    return Plan("link-account", Op.LINK_ACCOUNT, [call], 1, [Named("identity", identity)])


def _eventfields_of(check: Checker, item: Mapping[str, Any], row: int | None) -> dict[str, Any]:
    """Check one event; return it as build_request("track") takes it."""
    has_identity, has_user_id = item.get("identity") is not None, item.get("user_id") is not None
    if has_identity == has_user_id:
        where = f"Row {row}: give" if row else "Give"
        check.add(f"{where} exactly one of identity or user_id (not both, not neither).")
    no_control(check, item.get("identity"), "identity", row)
    no_control(check, item.get("event"), "event name", row)
    event = {key: item.get(key) for key in rules.TRACK_FIELDS if item.get(key) is not None}
    if "properties" in event:
        event["properties"] = properties_of(check, event["properties"], row=row, required=False)
        if not event["properties"]:
            del event["properties"]  # an empty object says nothing: leave it out of the body
    check(rules.validate_track_event, event, row=row)
    return event


def _named_event(event: Mapping[str, Any], row: int | None) -> Named:
    if event.get("identity") is not None:
        return Named("identity", str(event["identity"]), row)
    return Named("user_id", str(event.get("user_id")), row)


def _events(client: HeapClient, data: Mapping[str, Any], **_: Any) -> Plan:
    if "events" in data:
        return _bulk_events(client, data)
    fields = fields_of(data, set(rules.TRACK_FIELDS) | {"user_properties"})
    user_properties = fields.pop("user_properties", None) or None  # {} means "none"
    check = Checker()
    filled = {}
    if "idempotency_key" not in fields:
        # A key makes a repeat (retry, double submit) harmless: Heap keeps the first write.
        fields["idempotency_key"] = filled["idempotency_key"] = uuid.uuid4().hex
    event = _eventfields_of(check, fields, None)
    if user_properties is not None and "identity" not in fields:
        check.add("User properties can only be set for an identity, not for a user_id.")
    if user_properties is not None:
        user_properties = properties_of(check, user_properties, row=None)
    check.done()
    calls, notices, operation = [], [], Op.TRACK
    if user_properties:
        operation = Op.TRACK_WITH_USER_PROPERTIES
        # Heap has no single call for this: properties first, so the event sees them.
        calls.append(
            client.build_request(
                "add_user_properties", identity=fields["identity"], properties=user_properties
            )
        )
        notices = email_notices([user_properties])
    calls.append(client.build_request("track", **event))
    return Plan("events", operation, calls, 1, [_named_event(event, None)], notices, filled)


# ----- bulk operations ----------------------------------------------------------------------
def _bulk_list(data: Mapping[str, Any], key: str) -> list[Any]:
    fields_of(data, {key})
    items = data.get(key)
    if not isinstance(items, list) or not items:
        raise CorrectionInputError(f"“{key}” must be a non-empty list.")
    for row, item in enumerate(items, 1):
        if not isinstance(item, Mapping):
            raise CorrectionInputError(f"Row {row}: each item must be an object.")
    return items


def _chunked_calls(client: HeapClient, operation: str, key: str, items: list) -> list:
    return [
        client.build_request(operation, **{key: list(piece)})
        for _, piece in chunks(items, CHUNK_SIZE)
    ]


def _bulk_users(client: HeapClient, data: Mapping[str, Any]) -> Plan:
    items, check, named = _bulk_list(data, "users"), Checker(), []
    for row, item in enumerate(items, 1):
        check(rules.validate_item, item, allowed=("identity", "properties"), row=row)
        identity = identity_of(check, item.get("identity"), row)
        properties_of(check, item.get("properties"), row=row)
        if identity is not None:
            named.append(Named("identity", identity, row))
    check.done()
    calls = _chunked_calls(client, "bulk_add_user_properties", "users", items)
    notices = email_notices([item["properties"] for item in items])
    return Plan("user-properties", Op.USER_PROPERTIES_BULK, calls, len(items), named, notices)


def _bulk_accounts(client: HeapClient, data: Mapping[str, Any]) -> Plan:
    items, check = _bulk_list(data, "accounts"), Checker()
    for row, item in enumerate(items, 1):
        check(rules.validate_item, item, allowed=("account_id", "properties"), row=row)
        if item.get("account_id") is None:
            check.add(f"Row {row}: the account_id is missing.")
        else:
            check(rules.validate_account_id, item["account_id"], row=row)
            no_control(check, item["account_id"], "account_id", row)
        properties_of(check, item.get("properties"), row=row)
    check.done()
    calls = _chunked_calls(client, "bulk_add_account_properties", "accounts", items)
    return Plan("account-properties", Op.ACCOUNT_PROPERTIES_BULK, calls, len(items))


def _bulk_events(client: HeapClient, data: Mapping[str, Any]) -> Plan:
    items, check = _bulk_list(data, "events"), Checker()
    # Keys derived from the content: the preview and the send (and a re-upload of the same
    # file) carry the same keys, so Heap never counts an event of this file twice.
    seed = hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()
    events = []
    for row, item in enumerate(items, 1):
        check(rules.validate_item, item, allowed=rules.TRACK_FIELDS, row=row)
        event = _eventfields_of(check, item, row)
        event.setdefault("idempotency_key", f"desk-{seed[:24]}-{row}")
        events.append(event)
    check.done()
    named = [_named_event(event, row) for row, event in enumerate(events, 1)]
    calls = _chunked_calls(client, "bulk_track", "events", events)
    return Plan("events", Op.TRACK_BULK, calls, len(events), named)


PLANNERS: dict[str, Callable[..., Plan]] = {
    "identify": _identify,
    "user-properties": _user_properties,
    "account-properties": _account_properties,
    "link-account": _link_account,
    "events": _events,
}


def plan(
    client: HeapClient,
    family: str,
    data: Mapping[str, Any],
    *,
    account_property: str | None = None,
) -> Plan:
    """Validate `data` for one of FAMILIES and return the calls it makes, in order."""
    if family not in PLANNERS:
        raise ValueError(f"unknown correction family {family!r}")
    if not isinstance(data, Mapping):
        raise CorrectionInputError("The correction must be an object of fields.")
    return PLANNERS[family](client, data, account_property=account_property)
