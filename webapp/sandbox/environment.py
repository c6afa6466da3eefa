"""The data one fake Heap environment (app_id) holds: users, events, links, accounts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Heap: at most 10 user_ids identified to one identity within a month.
IDENTIFY_LIMIT = 10
IDENTIFY_WINDOW = 30 * 24 * 3600.0


@dataclass
class UserRecord:
    """An identified user (identity set) or an anonymous one (a single user_id)."""

    identity: str | None
    user_ids: set[str] = field(default_factory=set)
    properties: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the record for the admin state endpoint."""
        return {
            "identity": self.identity,
            "user_ids": sorted(self.user_ids, key=int),
            "properties": dict(self.properties),
            "events": [dict(event) for event in self.events],
        }


class Environment:
    """One app_id's users, anonymous users, identify links and accounts (no locking here)."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self.users: dict[str, UserRecord] = {}
        self.anonymous: dict[str, UserRecord] = {}
        # user_id -> identity; Heap allows one identity per user_id, ever.
        self.links: dict[str, str] = {}
        self.identify_history: dict[str, list[tuple[str, float]]] = {}
        self.accounts: dict[str, dict[str, Any]] = {}
        self.idempotency_keys: set[str] = set()

    def _user(self, *, identity: str | None = None, user_id: str | None = None) -> UserRecord:
        """Return (creating if needed) the record events for this identity/user_id land on."""
        if identity is None and user_id is not None and user_id in self.links:
            identity = self.links[user_id]
        if identity is not None:
            return self.users.setdefault(identity, UserRecord(identity=identity))
        if user_id is None:
            raise ValueError("an event needs an identity or a user_id")
        return self.anonymous.setdefault(user_id, UserRecord(identity=None, user_ids={user_id}))

    def track(self, event: dict[str, Any], now: float) -> str | None:
        """Store one event; return a note when Heap would drop it silently."""
        key = event.get("idempotency_key")
        if key is not None:
            # Heap: a repeat with the same key is dropped, the first write wins.
            if key in self.idempotency_keys:
                return "event dropped: idempotency_key already seen"
            self.idempotency_keys.add(key)
        record = self._user(identity=event.get("identity"), user_id=event.get("user_id"))
        stored = {k: v for k, v in event.items() if v is not None and k not in ("identity",)}
        stored["received_at"] = now
        record.events.append(stored)
        return None

    def identify(self, user_id: str, identity: str, now: float) -> str | None:
        """Link user_id to identity, or return why Heap would silently ignore the call."""
        linked = self.links.get(user_id)
        if linked == identity:
            return "identify ignored: user_id already identified with this identity"
        if linked is not None:
            return "identify ignored: user_id is already identified with another identity"
        recent = [
            (uid, at)
            for uid, at in self.identify_history.get(identity, [])
            if now - at < IDENTIFY_WINDOW
        ]
        if len({uid for uid, _ in recent}) >= IDENTIFY_LIMIT:
            return "identify ignored: identity already has 10 user_ids in the last 30 days"
        self.identify_history[identity] = [*recent, (user_id, now)]
        self.links[user_id] = identity
        user = self._user(identity=identity)
        user.user_ids.add(user_id)
        anonymous = self.anonymous.pop(user_id, None)
        if anonymous is not None:
            # Identify moves the anonymous user's events to the identified user.
            user.events.extend(anonymous.events)
            for key, value in anonymous.properties.items():
                user.properties.setdefault(key, value)
        return None

    def add_user_properties(self, identity: str, properties: dict[str, Any]) -> None:
        """Set (overwrite) properties of an identified user."""
        self._user(identity=identity).properties.update(properties)

    def add_account_properties(self, account_id: str, properties: dict[str, Any]) -> None:
        """Set (overwrite) properties of an account."""
        self.accounts.setdefault(account_id, {}).update(properties)

    def erase(self, target: dict[str, Any]) -> int:
        """Remove everything held about one deletion target; return how many users went."""
        if "identity" in target:
            return self._erase_identity(target["identity"])
        user_id = str(target["user_id"])
        if user_id in self.links:
            # A user_id of an identified user names that whole user.
            return self._erase_identity(self.links[user_id])
        record = self.anonymous.pop(user_id, None)
        if record is None:
            return 0
        self._forget_keys(record)
        return 1

    def _erase_identity(self, identity: str) -> int:
        record = self.users.pop(identity, None)
        self.identify_history.pop(identity, None)
        for user_id in [uid for uid, linked in self.links.items() if linked == identity]:
            del self.links[user_id]
        if record is None:
            return 0
        self._forget_keys(record)
        return 1

    def _forget_keys(self, record: UserRecord) -> None:
        for event in record.events:
            self.idempotency_keys.discard(event.get("idempotency_key"))

    def to_json(self) -> dict[str, Any]:
        """Return everything held, for the admin state endpoint."""
        return {
            "users": [self.users[key].to_json() for key in sorted(self.users)],
            "anonymous_users": [
                self.anonymous[key].to_json() for key in sorted(self.anonymous, key=int)
            ],
            "accounts": [
                {"account_id": key, "properties": dict(self.accounts[key])}
                for key in sorted(self.accounts)
            ],
        }
