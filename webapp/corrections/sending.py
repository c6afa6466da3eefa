"""A correction's two commits and the calls between them.

`record_intent` commits the correction as `sending` with its calls (bodies encrypted) and an
audit entry; `send_calls` then calls Heap, paced, with no transaction open; `record_outcome`
commits Heap's answers with their audit entry. A correction the environment's policy asks a
second officer to approve is committed the same way but `awaiting_approval`: its stored bodies
are exactly what the approval sends (webapp.corrections.approval).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlmodel import Session, select

from webapp.corrections.guard import fingerprint_of
from webapp.corrections.pacing import Pacer, claims_for
from webapp.corrections.preview import Preview
from webapp.crypto import encrypt
from webapp.heap import HeapClient, HeapError, HeapRateLimited, error_class
from webapp.heap import redact as redact_text
from webapp.heap.redaction import skeleton_of
from webapp.models import CallState, Correction, CorrectionCall, utcnow
from webapp.models import CorrectionState as State
from webapp.notifications import events as notifications
from webapp.trail import audit

log = logging.getLogger(__name__)
# Beyond this many people, the audit entry pins the list by its SHA-256 instead of listing it.
MAX_AUDITED_FPS = 100


def default_pacer() -> Pacer:
    """The process's pacer, shared by every request of this app (tests may replace it)."""
    return current_app.extensions.setdefault("desk_pacer", Pacer())


def _fingerprints(seen: Preview) -> list[str]:
    return list(dict.fromkeys(fingerprint_of(named) for named in seen.plan.named))


def _body_text(body: dict[str, Any] | None) -> str:
    return json.dumps(body, ensure_ascii=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_intent(
    session: Session,
    actor: str,
    seen: Preview,
    reason: str | None,
    confirmed: bool,
    *,
    author_id: int | None = None,
    awaiting: bool = False,
) -> tuple[Correction, list[int]]:
    """Commit the correction as `sending` (or `awaiting_approval`), its calls, and the audit
    entry saying so."""
    found, prints = seen.plan, _fingerprints(seen)
    single = (
        {named.kind: fingerprint_of(named) for named in found.named} if found.items == 1 else {}
    )
    correction = Correction(
        environment_id=seen.environment.id,
        operation=found.operation.value,
        actor=actor,
        item_count=found.items,
        call_count=len(found.calls),
        identity_fingerprint=single.get("identity"),
        user_id_fingerprint=single.get("user_id"),
        subject_fingerprints=json.dumps(prints),
        warnings=json.dumps([{"code": n.code, "message": n.message} for n in found.notices]),
        warnings_confirmed=confirmed and seen.needs_confirmation,
        override_reason=reason if seen.hits else None,
        guarded_count=len(seen.hits),
        author_id=author_id,
        approval_required=awaiting,
        state=(State.AWAITING_APPROVAL if awaiting else State.SENDING).value,
    )
    session.add(correction)
    session.flush()
    rows = []
    for position, call in enumerate(found.calls, 1):
        text = _body_text(call.json_body)
        rows.append(
            CorrectionCall(
                correction_id=correction.id,
                position=position,
                operation=call.operation,
                url=call.url,
                item_count=_items_in(call.json_body),
                body_encrypted=encrypt(text),
                body_sha256=_sha256(text),
            )
        )
    session.add_all(rows)
    session.flush()
    details = {
        "operation": found.operation.value,
        "environment_id": seen.environment.id,
        "items": found.items,
        "calls": [{"url": row.url, "body_sha256": row.body_sha256} for row in rows],
        "subject_count": len(prints),
        "subjects_sha256": _sha256("\n".join(sorted(prints))),
        "warnings": [n.code for n in found.notices],
        "warnings_confirmed": correction.warnings_confirmed,
    }
    if len(prints) <= MAX_AUDITED_FPS:
        details["subject_fps"] = prints
    if seen.hits:
        details["override_reason"] = reason
        details["guarded_fps"] = list(dict.fromkeys(hit.fingerprint for hit in seen.hits))
    audit.record(
        session,
        actor=actor,
        action="correction.approval_requested" if awaiting else "correction.requested",
        target_type="correction",
        target_id=correction.id,
        details=details,
    )
    if awaiting:
        notifications.correction_awaits_approval(session, correction)
    session.commit()  # the intent is safe before Heap is called
    return correction, [row.id for row in rows]


def _items_in(body: dict[str, Any] | None) -> int:
    for key in ("users", "accounts", "events"):
        if isinstance((body or {}).get(key), list):
            return len(body[key])
    return 1


@dataclass
class Outcome:
    """Heap's answer to one call: `message` (redacted) is kept on the call, never audited."""

    call_id: int
    ok: bool
    status: int | None
    message: str
    at: datetime
    error_class: str | None = None


_SENDERS = {
    "identify": lambda c, b: c.identify(
        user_id=b["user_id"], identity=b["identity"], timestamp=b.get("timestamp")
    ),
    "add_user_properties": lambda c, b: c.add_user_properties(
        identity=b["identity"], properties=b["properties"]
    ),
    "bulk_add_user_properties": lambda c, b: c.bulk_add_user_properties(b["users"]),
    "add_account_properties": lambda c, b: c.add_account_properties(
        account_id=b["account_id"], properties=b["properties"]
    ),
    "bulk_add_account_properties": lambda c, b: c.bulk_add_account_properties(b["accounts"]),
    "track": lambda c, b: c.track(**{k: v for k, v in b.items() if k != "app_id"}),
    "bulk_track": lambda c, b: c.bulk_track(b["events"]),
}


# Who a call is about: cut from Heap's text at any length (short ones only standing alone).
IDENTIFIER_KEYS = frozenset({"identity", "user_id", "account_id"})
# Other values (properties, event names) shorter than this would mangle ordinary words.
MIN_VALUE_LENGTH = 3


def _values(body: object, *, key: str | None = None) -> set[tuple[str, bool]]:
    """Every value a call body carries (not its app_id), and whether it names someone."""
    if isinstance(body, dict):
        found: set[tuple[str, bool]] = set()
        for name, value in body.items():
            if name != "app_id":
                found |= _values(value, key=name)
        return found
    if isinstance(body, list):
        return set().union(*(_values(item, key=key) for item in body), set())
    if isinstance(body, bool) or body is None:
        return set()
    return {(str(body), key in IDENTIFIER_KEYS)}


def redact(message: str, body: dict) -> str:
    """Heap's text may echo what it was sent: cut every identity and value, however spelled."""
    values = [
        value
        for value, names_someone in _values(body)
        if names_someone or len(skeleton_of(value)) >= MIN_VALUE_LENGTH
    ]
    return redact_text(message, {"[value]": values})


def send_one(client: HeapClient, call_id: int, operation: str, body: dict) -> Outcome:
    """Make one call; every Heap answer becomes an Outcome, never an exception."""
    try:
        result = _SENDERS[operation](client, body)
    except HeapRateLimited as error:
        wait = f" Heap asked to wait {error.retry_after:.0f} s." if error.retry_after else ""
        message = redact(f"{error.message}.{wait}", body)
        return Outcome(call_id, False, error.status, message, utcnow(), error_class(error))
    except HeapError as error:
        message = redact(error.message, body)
        return Outcome(call_id, False, error.status, message, utcnow(), error_class(error))
    # Heap's success bodies ({} / OK / empty) say nothing more than the status does.
    text = (result.body or "").strip()
    message = "accepted" if text in ("", "{}", "OK") else redact(text, body)[:200]
    return Outcome(call_id, True, result.status_code, message, utcnow())


def send_calls(
    client: HeapClient, calls: list[tuple[int, str, dict]], pacer: Pacer | None
) -> list[Outcome]:
    """Send (call id, operation, body) in order, paced under Heap's limits.

    Stops at the first failure: the rest stay pending and a retry resumes from there (track
    with user properties must not track before its properties are set).
    """
    pacer = pacer or default_pacer()
    outcomes = []
    with client:
        for call_id, operation, body in calls:
            pacer.wait(claims_for(operation, body))
            outcome = send_one(client, call_id, operation, body)
            outcomes.append(outcome)
            if not outcome.ok:
                break
    return outcomes


def record_outcome(
    session: Session, actor: str, correction_id: int, outcomes: list[Outcome], action: str
) -> Correction:
    """Store each call's answer, the correction's state and the audit entry; commit."""
    correction = session.get(Correction, correction_id)
    calls = {row.id: row for row in calls_of(session, correction_id)}
    for outcome in outcomes:
        row = calls[outcome.call_id]
        row.state = CallState.SUCCEEDED.value if outcome.ok else CallState.FAILED.value
        row.heap_status, row.heap_message = outcome.status, outcome.message[:500]
        row.attempts += 1
        row.sent_at = row.sent_at or outcome.at
        row.completed_at = outcome.at
    states = [row.state for row in calls.values()]
    if all(state == CallState.SUCCEEDED for state in states):
        correction.state = State.SUCCEEDED.value
    elif CallState.SUCCEEDED.value in states:
        correction.state = State.PARTIAL.value
    else:
        correction.state = State.FAILED.value
    last = outcomes[-1] if outcomes else None
    correction.heap_status = last.status if last else None
    correction.heap_message = last.message[:500] if last else None
    correction.completed_at = utcnow()
    audit.record(
        session,
        actor=actor,
        action=action,
        target_type="correction",
        target_id=correction.id,
        details={
            "state": correction.state,
            "attempt": correction.attempts,
            # Statuses and error classes only: Heap's messages could echo a value back.
            "calls": [_audited(calls[o.call_id].position, o) for o in outcomes],
        },
    )
    session.commit()
    # Ids and states only: never a value, identity or Heap's message text.
    log.info("correction %s %s: %s", correction.id, action, correction.state)
    return correction


def _audited(position: int, outcome: Outcome) -> dict[str, Any]:
    """One call's outcome as the audit trail records it: never Heap's text."""
    entry: dict[str, Any] = {"position": position, "ok": outcome.ok, "status": outcome.status}
    if not outcome.ok:
        entry["error_class"] = outcome.error_class or "not_sent"
    return entry


def calls_of(session: Session, correction_id: int) -> list[CorrectionCall]:
    """A correction's calls, in the order they are sent."""
    query = select(CorrectionCall).where(CorrectionCall.correction_id == correction_id)
    return list(session.exec(query.order_by(CorrectionCall.position)).all())
