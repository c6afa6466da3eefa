"""Manual corrections (use cases): preview, send and retry every Heap write operation by hand.

Heap keeps no history of properties, so the desk's record is the only one: each correction is
a row with the exact bodies sent (encrypted), Heap's answer to each call, the warnings shown,
and any override of the re-ingestion guard. Heap is never called inside a transaction: the
intent is committed as `sending`, the calls are made, then the outcome and its audit entry
are committed together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from webapp import tool_policy
from webapp.accounts.users import find_user
from webapp.corrections.checks import EnvironmentConflict, EnvironmentNotFound
from webapp.corrections.guard import (
    check_guard,
    deleting_batches,
    fingerprint_of,
    guard_hits,
    identify_notices,
)
from webapp.corrections.pacing import Pacer
from webapp.corrections.plans import CorrectionInputError, Plan, plan
from webapp.corrections.preview import Preview
from webapp.corrections.sending import calls_of, record_intent, record_outcome, send_calls
from webapp.crypto import decrypt
from webapp.environments import heap_client
from webapp.heap import HeapClient, HeapError
from webapp.models import CallState, Correction, CorrectionCall, Environment, utcnow
from webapp.models import CorrectionOperation as Op
from webapp.models import CorrectionState as State
from webapp.trail import audit

# A correction still `sending` this long after it started was interrupted: it may be retried.
STALE_AFTER = timedelta(minutes=5)
MAX_REASON = 2000


class ConfirmationRequired(CorrectionInputError):
    """Warnings that need an explicit "send anyway" were not confirmed."""

    code = "confirmation_required"


class NotRetryable(CorrectionInputError):
    """The correction cannot be retried (it succeeded, or is being sent right now)."""

    code = "not_retryable"


class OperationDisabled(CorrectionInputError):
    """The environment's tool policy switches this operation off."""

    code = "operation_disabled"


class PolicyRefused(CorrectionInputError):
    """The environment's guardrails refuse this correction (too many items, a forbidden key)."""

    code = "policy"


class CorrectionNotFound(LookupError):
    """No correction has this id."""


def client_for(env: Environment) -> HeapClient:
    """A Heap client for `env`, or CorrectionInputError saying why it cannot reach Heap."""
    try:
        return heap_client(env)
    except (HeapError, ValueError) as error:
        raise EnvironmentConflict(f"The environment cannot reach Heap: {error}") from None


def preview(session: Session, *, environment_id: int, family: str, data: dict[str, Any]) -> Preview:
    """Validate a correction and say exactly what would be sent, without sending or storing."""
    env = session.get(Environment, environment_id) if isinstance(environment_id, int) else None
    if env is None:
        raise EnvironmentNotFound("Choose a Heap environment.")
    policy = tool_policy.policy_of(session, env)
    operation = tool_policy.FAMILY_OPERATION.get(family)
    if operation is not None and not policy.allows(operation):
        raise OperationDisabled(tool_policy.disabled_message(env, operation))
    if "app_id" in data:
        # Bodies copied from Heap's documentation carry an app_id: it must be this one's.
        data = dict(data)
        if str(data.pop("app_id")) != env.app_id:
            raise EnvironmentConflict(
                f"The body's app_id is not the app_id of environment “{env.name}” "
                f"({env.app_id}); leave it out, the desk adds it."
            )
    with client_for(env) as client:
        found = plan(client, family, data, account_property=env.account_property)
    problems = tool_policy.correction_refusals(
        policy, items=found.items, property_keys=property_keys(found)
    )
    if problems:
        raise PolicyRefused(problems)
    if found.operation == Op.IDENTIFY:
        identity, user_id = (fingerprint_of(named) for named in found.named)
        found.notices += identify_notices(session, env.id, identity, user_id, utcnow())
    return Preview(
        env, found, guard_hits(session, found.named), policy.needs_four_eyes(found.items)
    )


def property_keys(found: Plan) -> list[str]:
    """Every property key the correction's calls write (user, account and event properties)."""
    return keys_in_bodies(call.json_body for call in found.calls)


def keys_in_bodies(bodies: Iterable[Any]) -> list[str]:
    """Every property key these call bodies write, once each, in order."""
    keys: dict[str, None] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "properties" and isinstance(inner, dict):
                    keys.update(dict.fromkeys(str(name) for name in inner))
                else:
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    for body in bodies:
        walk(body)
    return list(keys)


def send(
    session: Session,
    *,
    actor: str,
    environment_id: int,
    family: str,
    data: dict[str, Any],
    override_reason: str | None = None,
    confirm_warnings: bool = False,
    pacer: Pacer | None = None,
) -> Correction:
    """Re-validate, record the intent, call Heap (paced), record the outcome; commits twice.

    When the environment's policy asks for four-eyes (`preview.needs_approval`), the correction
    is committed `awaiting_approval` with its calls, nothing is sent, and it is returned so.
    """
    seen = preview(session, environment_id=environment_id, family=family, data=data)
    reason = (override_reason or "").strip() or None
    try:
        if reason and len(reason) > MAX_REASON:
            raise CorrectionInputError(f"The override reason is over {MAX_REASON} characters.")
        check_guard(seen.hits, reason)
        if seen.needs_confirmation and not confirm_warnings:
            confirm = [n.message for n in seen.plan.notices if n.confirm]
            raise ConfirmationRequired(confirm + ["Confirm these warnings to send anyway."])
    except CorrectionInputError as error:
        error.preview = seen  # the page shows the preview again, with the question to answer
        raise
    author = find_user(session, actor)
    author_id = author.id if author is not None else None
    if seen.needs_approval:
        # The environment's four-eyes: stored with its exact bodies, sent only once a second
        # officer approves it (webapp.corrections.approval); Heap hears nothing now.
        correction, _ = record_intent(
            session, actor, seen, reason, confirm_warnings, author_id=author_id, awaiting=True
        )
        return correction
    client = client_for(seen.environment)
    correction, call_ids = record_intent(
        session, actor, seen, reason, confirm_warnings, author_id=author_id
    )
    calls = [
        (cid, c.operation, c.json_body) for cid, c in zip(call_ids, seen.plan.calls, strict=True)
    ]
    outcomes = send_calls(client, calls, pacer)
    return record_outcome(session, actor, correction.id, outcomes, "correction.sent")


def is_retryable(correction: Correction, now: datetime | None = None) -> bool:
    """Failed or partly sent corrections, and ones interrupted while sending."""
    if correction.state in (State.FAILED, State.PARTIAL):
        return True
    now = now or utcnow()
    return correction.state == State.SENDING and correction.started_at <= now - STALE_AFTER


def retry(
    session: Session, *, actor: str, correction_id: int, pacer: Pacer | None = None
) -> Correction:
    """Send again every call of a correction that Heap has not accepted yet."""
    correction = session.exec(
        select(Correction).where(Correction.id == correction_id).with_for_update()
    ).first()
    if correction is None:
        raise CorrectionNotFound(f"There is no correction {correction_id}.")
    if not is_retryable(correction):
        raise NotRetryable(f"This correction is {correction.state}: there is nothing to retry.")
    env = session.get(Environment, correction.environment_id)
    pending = [row for row in calls_of(session, correction.id) if row.state != CallState.SUCCEEDED]
    bodies = [(row.id, row.operation, json.loads(decrypt(row.body_encrypted))) for row in pending]
    # The stored body is what the officer saw; sent to another app_id it would not be.
    if any(body.get("app_id") != env.app_id for _, _, body in bodies):
        raise NotRetryable(
            "The environment's app_id changed since this correction was made; make a new one."
        )
    prints = json.loads(correction.subject_fingerprints)
    if deleting_batches(session, prints) and not correction.override_reason:
        raise NotRetryable(
            "Since this correction was made the desk has started deleting people it names; "
            "retrying would re-create them in Heap. Make a new correction if it is still needed."
        )
    client = client_for(env)
    correction.state, correction.started_at = State.SENDING.value, utcnow()
    correction.attempts += 1
    audit.record(
        session,
        actor=actor,
        action="correction.retry_requested",
        target_type="correction",
        target_id=correction.id,
        details={"attempt": correction.attempts, "positions": [row.position for row in pending]},
    )
    session.commit()
    outcomes = send_calls(client, bodies, pacer)
    return record_outcome(session, actor, correction.id, outcomes, "correction.retried")


def get_correction(session: Session, correction_id: int) -> tuple[Correction, list[CorrectionCall]]:
    """A correction and its calls, in order."""
    correction = session.get(Correction, correction_id)
    if correction is None:
        raise CorrectionNotFound(f"There is no correction {correction_id}.")
    return correction, calls_of(session, correction_id)


def call_body(call: CorrectionCall) -> dict[str, Any]:
    """The exact JSON body that was sent, decrypted (officers and admins only)."""
    return json.loads(decrypt(call.body_encrypted))


def list_corrections(
    session: Session,
    *,
    operation: str | None = None,
    state: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[Correction]:
    """Newest first, keyset-paginated by id (`before`), filtered as the history page asks."""
    query = select(Correction)
    if operation:
        query = query.where(Correction.operation == operation)
    if state:
        query = query.where(Correction.state == state)
    if actor:
        query = query.where(Correction.actor == actor.strip().lower())
    if since:
        query = query.where(Correction.created_at >= since)
    if until:
        query = query.where(Correction.created_at < until)
    if before:
        query = query.where(Correction.id < before)
    return list(session.exec(query.order_by(Correction.id.desc()).limit(limit)).all())
