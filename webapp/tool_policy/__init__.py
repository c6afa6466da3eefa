"""Each environment's tool policy: which Heap operations the desk offers there, and guardrails.

The desk is the gateway between people (and AI assistants over MCP) and Heap's operations. An
admin decides per environment which operations are offered — deletion, identify, user
properties, account properties, link to account, track — and the guardrails on corrections:
the most items one correction may carry, four-eyes above N items (0: every correction), and
property keys nobody may write (exact names or `*`/`?` patterns, compared case-insensitively).
The description of each operation is what its form and the MCP tool show.

Forms, the API and the MCP tools all ask this module, so a disabled operation is refused the
same way everywhere. Every change is audited with the policy before and after.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session

from webapp.models import Environment, EnvironmentPolicy, utcnow
from webapp.trail import audit

# The operations a policy switches, in the order pages list them.
OPERATIONS = (
    "deletion",
    "identify",
    "user_properties",
    "account_properties",
    "link_account",
    "track",
)
LABELS = {
    "deletion": "Deletion",
    "identify": "Identify",
    "user_properties": "User properties",
    "account_properties": "Account properties",
    "link_account": "Link to account",
    "track": "Track events",
}
DEFAULT_DESCRIPTIONS = {
    "deletion": (
        "Erase people from Heap (GDPR Art. 17): a list of identities or user ids becomes a "
        "batch that a second person must approve before anything is sent."
    ),
    "identify": "Tie an anonymous Heap user_id to an identity (Heap merges the two users).",
    "user_properties": (
        "Set properties on users by identity. Heap keeps no history: the desk's record is the "
        "only one."
    ),
    "account_properties": "Set properties on accounts by account_id.",
    "link_account": "Link a user to an account through the environment's account property.",
    "track": "Record server-side events for users, one or many, with optional user properties.",
}
# The correction families of webapp.corrections.plans and the operation each belongs to.
FAMILY_OPERATION = {
    "identify": "identify",
    "user-properties": "user_properties",
    "account-properties": "account_properties",
    "link-account": "link_account",
    "events": "track",
}
# The largest correction the desk accepts at all (webapp.corrections.bulk.MAX_ROWS).
MAX_ITEMS_LIMIT = 50_000
# A new Main Production environment needs a second officer for corrections above this many.
MAIN_PRODUCTION_FOUR_EYES_ABOVE = 100
MAX_FORBIDDEN_KEYS = 200
MAX_KEY_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 1000
CHANGED_ACTION = "environment.policy_changed"


class PolicyInputError(ValueError):
    """A policy change that breaks a rule; the message is for the admin."""


@dataclass(frozen=True)
class Policy:
    """An environment's tool policy, as DESIGN.md's GET /environments/{id}/policy shows it."""

    operations: dict[str, bool]
    corrections_four_eyes_above: int | None
    max_items: int
    forbidden_property_keys: list[str] = field(default_factory=list)
    descriptions: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def allows(self, operation: str) -> bool:
        return self.operations.get(operation, False)

    def description(self, operation: str) -> str:
        return self.descriptions.get(operation) or DEFAULT_DESCRIPTIONS[operation]

    def needs_four_eyes(self, items: int) -> bool:
        """Whether a correction of `items` items waits for a second officer's approval."""
        above = self.corrections_four_eyes_above
        return above is not None and items > above


def default_policy(main_production: bool) -> Policy:
    """All operations on; Main Production asks four-eyes above 100 items, others never."""
    return Policy(
        operations={operation: True for operation in OPERATIONS},
        corrections_four_eyes_above=MAIN_PRODUCTION_FOUR_EYES_ABOVE if main_production else None,
        max_items=MAX_ITEMS_LIMIT,
        forbidden_property_keys=[],
        descriptions=dict(DEFAULT_DESCRIPTIONS),
    )


def _from_row(row: EnvironmentPolicy) -> Policy:
    stored = json.loads(row.operations)
    descriptions = json.loads(row.descriptions)
    return Policy(
        # An operation added to the desk after the row was written is on, as for a new one.
        operations={operation: bool(stored.get(operation, True)) for operation in OPERATIONS},
        corrections_four_eyes_above=row.corrections_four_eyes_above,
        max_items=row.max_items,
        forbidden_property_keys=list(json.loads(row.forbidden_property_keys)),
        descriptions={op: descriptions.get(op) or DEFAULT_DESCRIPTIONS[op] for op in OPERATIONS},
    )


def policy_of(session: Session, env: Environment) -> Policy:
    """The environment's policy: as stored, or the defaults for its kind."""
    row = session.get(EnvironmentPolicy, env.id)
    return _from_row(row) if row is not None else default_policy(env.main_production)


def last_change(session: Session, env: Environment) -> tuple[str | None, datetime] | None:
    """Who changed the policy last and when (who is None: the defaults, at registration)."""
    row = session.get(EnvironmentPolicy, env.id)
    return (row.updated_by, row.updated_at) if row is not None else None


def store_default(session: Session, env: Environment) -> Policy:
    """Give a newly registered environment its default policy (in the caller's transaction)."""
    policy = default_policy(env.main_production)
    _write(session, env, policy, actor=None)
    return policy


def _write(session: Session, env: Environment, policy: Policy, actor: str | None) -> None:
    row = session.get(EnvironmentPolicy, env.id) or EnvironmentPolicy(
        environment_id=env.id, max_items=policy.max_items
    )
    row.operations = json.dumps(policy.operations, sort_keys=True)
    row.corrections_four_eyes_above = policy.corrections_four_eyes_above
    row.max_items = policy.max_items
    row.forbidden_property_keys = json.dumps(policy.forbidden_property_keys)
    row.descriptions = json.dumps(policy.descriptions, sort_keys=True)
    row.updated_by, row.updated_at = actor, utcnow()
    session.add(row)


# ----- reading a change -----------------------------------------------------------------
def _whole(value: Any, name: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PolicyInputError(f"“{name}” must be a whole number from {low:,} to {high:,}.")
    return value


def _operations(value: Any, current: dict[str, bool]) -> dict[str, bool]:
    if not isinstance(value, Mapping):
        raise PolicyInputError("“operations” must be an object of operation names and true/false.")
    unknown = sorted(str(name) for name in value if name not in OPERATIONS)
    if unknown:
        raise PolicyInputError(
            f"Unknown operation {', '.join(unknown)}: the operations are {', '.join(OPERATIONS)}."
        )
    for name, on in value.items():
        if not isinstance(on, bool):
            raise PolicyInputError(f"Operation “{name}” must be true or false.")
    return {**current, **value}


def _forbidden_keys(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise PolicyInputError("“forbidden_property_keys” must be a list of names or patterns.")
    if len(value) > MAX_FORBIDDEN_KEYS:
        raise PolicyInputError(f"At most {MAX_FORBIDDEN_KEYS} forbidden property keys.")
    keys: list[str] = []
    for key in value:
        if not isinstance(key, str) or not key.strip():
            raise PolicyInputError("Each forbidden property key must be a non-empty text.")
        # Checked as sent (before trimming), as the API's document states the limits.
        if len(key) > MAX_KEY_LENGTH:
            raise PolicyInputError(f"A forbidden property key is over {MAX_KEY_LENGTH} characters.")
        if any(ord(char) < 32 or ord(char) == 127 for char in key):
            raise PolicyInputError("A forbidden property key contains a control character.")
        key = key.strip()
        if key not in keys:
            keys.append(key)
    return keys


def _descriptions(value: Any, current: dict[str, str]) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise PolicyInputError("“descriptions” must be an object of operation names and texts.")
    merged = dict(current)
    for name, text in value.items():
        if name not in OPERATIONS:
            raise PolicyInputError(
                f"Unknown operation {name}: the operations are {', '.join(OPERATIONS)}."
            )
        if not isinstance(text, str):
            raise PolicyInputError(f"The description of “{name}” must be a text.")
        # Checked as sent (before trimming), as the API's document states the limits.
        if len(text) > MAX_DESCRIPTION_LENGTH:
            raise PolicyInputError(
                f"The description of “{name}” is over {MAX_DESCRIPTION_LENGTH} characters."
            )
        if any(ord(char) < 32 and char not in "\n\t" for char in text):
            raise PolicyInputError(f"The description of “{name}” contains a control character.")
        text = text.strip()
        # An empty description puts the desk's own back.
        merged[name] = text or DEFAULT_DESCRIPTIONS[name]
    return merged


FIELDS = (
    "operations",
    "corrections_four_eyes_above",
    "max_items",
    "forbidden_property_keys",
    "descriptions",
)


def changed(current: Policy, changes: Mapping[str, Any]) -> Policy:
    """`current` with `changes` (any subset of the policy's fields) applied, or PolicyInputError."""
    if not isinstance(changes, Mapping):
        raise PolicyInputError("The policy must be an object.")
    unknown = sorted(str(name) for name in changes if name not in FIELDS)
    if unknown:
        raise PolicyInputError(
            f"Unknown policy field {', '.join(unknown)}: the fields are {', '.join(FIELDS)}."
        )
    policy = current
    if "operations" in changes:
        policy = replace(policy, operations=_operations(changes["operations"], policy.operations))
    if "corrections_four_eyes_above" in changes:
        above = changes["corrections_four_eyes_above"]
        if above is not None:
            above = _whole(above, "corrections_four_eyes_above", low=0, high=MAX_ITEMS_LIMIT)
        policy = replace(policy, corrections_four_eyes_above=above)
    if "max_items" in changes:
        policy = replace(
            policy, max_items=_whole(changes["max_items"], "max_items", low=1, high=MAX_ITEMS_LIMIT)
        )
    if "forbidden_property_keys" in changes:
        keys = _forbidden_keys(changes["forbidden_property_keys"])
        policy = replace(policy, forbidden_property_keys=keys)
    if "descriptions" in changes:
        descriptions = _descriptions(changes["descriptions"], policy.descriptions)
        policy = replace(policy, descriptions=descriptions)
    return policy


def update_policy(
    session: Session, *, actor: str, env: Environment, changes: Mapping[str, Any]
) -> Policy:
    """Apply `changes`, audit the policy before and after, commit; nothing changes on error."""
    before = policy_of(session, env)
    after = changed(before, changes)
    _write(session, env, after, actor)
    audit.record(
        session,
        actor=actor,
        action=CHANGED_ACTION,
        target_type="environment",
        target_id=env.id,
        details={
            "changed": [name for name in FIELDS if getattr(before, name) != getattr(after, name)],
            "before": before.as_json(),
            "after": after.as_json(),
        },
    )
    session.commit()
    return after


# ----- checks the forms, the API and the MCP tools share ---------------------------------
def disabled_message(env: Environment, operation: str) -> str:
    """What a person reads when `operation` is switched off for `env`."""
    return (
        f"The policy of environment “{env.name}” disables {LABELS[operation].lower()}: "
        "an admin can switch it on under Environments → Tool policy."
    )


def refusal(session: Session, env: Environment, operation: str) -> str | None:
    """None when the environment's policy offers `operation`, else why not."""
    return None if policy_of(session, env).allows(operation) else disabled_message(env, operation)


def forbidden_keys_in(policy: Policy, keys: Iterable[str]) -> list[str]:
    """The keys (in order, once each) that a forbidden name or pattern matches."""
    patterns = [pattern.casefold() for pattern in policy.forbidden_property_keys]
    found: list[str] = []
    for key in keys:
        folded = key.casefold()
        if key not in found and any(fnmatch.fnmatchcase(folded, p) for p in patterns):
            found.append(key)
    return found


def correction_refusals(policy: Policy, *, items: int, property_keys: Iterable[str]) -> list[str]:
    """Why the policy's guardrails refuse a correction (empty when they let it through)."""
    problems = []
    if items > policy.max_items:
        problems.append(
            f"This correction carries {items:,} items; the environment's policy allows at most "
            f"{policy.max_items:,} in one correction. Split it into smaller ones."
        )
    forbidden = forbidden_keys_in(policy, property_keys)
    if forbidden:
        shown = ", ".join(f"“{key}”" for key in forbidden[:20])
        more = f" and {len(forbidden) - 20} more" if len(forbidden) > 20 else ""
        problems.append(
            f"The environment's policy forbids writing the property {shown}{more}. "
            "Remove it from the correction."
        )
    return problems


def operations_offered(session: Session, environments: Iterable[Environment]) -> dict[int, set]:
    """For each environment id, the operations its policy offers."""
    return {
        env.id: {op for op, on in policy_of(session, env).operations.items() if on}
        for env in environments
    }
