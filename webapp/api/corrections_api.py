"""Corrections over the API: every Heap write operation, single or bulk, and their history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

from flask_login import current_user
from flask_openapi3 import validate_request

from webapp.accounts.access import role_required
from webapp.api.blueprint import api
from webapp.api.common import checked
from webapp.api.correction_models import (
    BODIES,
    OPTIONS,
    CorrectionList,
    CorrectionListQuery,
    CorrectionOptions,
    CorrectionOut,
    CorrectionPath,
    CorrectionPreview,
    CorrectionRejectBody,
)
from webapp.api.schemas import ErrorBody
from webapp.corrections import approval, service
from webapp.corrections.plans import CorrectionInputError
from webapp.db import get_session
from webapp.errors import api_error
from webapp.models import Correction, CorrectionCall, CorrectionState, Role

# Refusals an officer can answer (override, confirm), and those that the environment's setup
# decides (its app_id, Account ID property, key), are conflicts, not malformed input; an
# environment that does not exist is not found.
CONFLICTS = {"reingestion_guard", "confirmation_required", "not_retryable", "conflict"}
# An operation the environment's tool policy switches off is not the caller's to send (403).
FORBIDDEN = {"operation_disabled"}
# POST /corrections/<family>: the family's operation id and summary (the role is added).
FAMILIES = {
    "identify": ("correct_identify", "Identify a user_id as an identity"),
    "user-properties": (
        "correct_user_properties",
        "Add user properties (single: identity + properties; bulk: users, any size)",
    ),
    "account-properties": (
        "correct_account_properties",
        "Add account properties (single: account_id + properties; bulk: accounts)",
    ),
    "link-account": ("correct_link_account", "Link a user to an account"),
    "events": (
        "correct_events",
        "Track an event (with optional user_properties), or bulk: events, any size",
    ),
}


def _refusal(error: CorrectionInputError):
    if error.code == "not_found":
        status = 404
    else:
        status = 409 if error.code in CONFLICTS else 403 if error.code in FORBIDDEN else 422
    return api_error(status, str(error), error.code)


def _call(call: CorrectionCall, *, values: bool) -> dict:
    data = {
        "position": call.position,
        "operation": call.operation,
        "url": call.url,
        "items": call.item_count,
        "state": call.state,
        "heap_status": call.heap_status,
        "heap_message": call.heap_message,
        "attempts": call.attempts,
        "body_sha256": call.body_sha256,
    }
    if values:
        data["body"] = service.call_body(call)
    return data


def public(correction: Correction, calls: list[CorrectionCall] | None = None, values=False):
    """A correction as the API shows it; bodies (values) only when asked and allowed."""
    stamp = lambda moment: moment.isoformat() if moment else None  # noqa: E731
    data = {
        "id": correction.id,
        "operation": correction.operation,
        "state": correction.state,
        "environment_id": correction.environment_id,
        "actor": correction.actor,
        "created_at": stamp(correction.created_at),
        "completed_at": stamp(correction.completed_at),
        "items": correction.item_count,
        "heap_status": correction.heap_status,
        "message": correction.heap_message,
        "warnings": json.loads(correction.warnings),
        "warnings_confirmed": correction.warnings_confirmed,
        "override_reason": correction.override_reason,
        "guarded_count": correction.guarded_count,
        "attempts": correction.attempts,
        "approval_required": correction.approval_required,
        "decided_by": correction.decided_by,
        "decided_at": stamp(correction.decided_at),
        "decision_reason": correction.decision_reason,
    }
    if calls is not None:
        data["calls"] = [_call(call, values=values) for call in calls]
        data["subject_fingerprints"] = json.loads(correction.subject_fingerprints)
    return data


def _preview(seen: service.Preview) -> dict:
    return {
        "operation": seen.plan.operation.value,
        "items": seen.plan.items,
        "calls": [
            {"operation": c.operation, "method": c.method, "url": c.url, "body": c.json_body}
            for c in seen.plan.calls
        ],
        "warnings": [
            {"code": n.code, "message": n.message, "needs_confirmation": n.confirm}
            for n in seen.plan.notices
        ],
        "guard": {"refused": bool(seen.hits), "message": seen.guard_message},
    }


def corrections_create(family: str, body: CorrectionOptions):
    """Validate, then send (or with "preview": true only show) one correction."""
    db = get_session()
    sent = body.model_dump(exclude_unset=True)
    data = {key: value for key, value in sent.items() if key not in OPTIONS or key == "app_id"}
    try:
        if body.preview:
            seen = service.preview(db, environment_id=body.environment_id, family=family, data=data)
            return _preview(seen), 200
        correction = service.send(
            db,
            actor=current_user.email,
            environment_id=body.environment_id,
            family=family,
            data=data,
            override_reason=body.override_reason,
            confirm_warnings=body.confirm_warnings,
        )
    except CorrectionInputError as error:
        return _refusal(error)
    # The environment's four-eyes: stored, not sent, until a second officer approves it.
    waiting = correction.state == CorrectionState.AWAITING_APPROVAL
    return public(correction, service.get_correction(db, correction.id)[1]), 202 if waiting else 201


def _create_view(family: str):
    operation_id, summary = FAMILIES[family]

    def view(body):
        """Send one correction of this family (see corrections_create)."""
        return corrections_create(family, body)

    view.__annotations__ = {"body": BODIES[family]}
    view.__name__ = view.__qualname__ = f"corrections_{family.replace('-', '_')}"
    view.__doc__ = BODIES[family].__doc__
    return api.post(
        f"/corrections/{family}",
        operation_id=operation_id,
        summary=f"{summary}. Role: officer.",
        description=(
            "201: sent, with Heap's outcome. 202: the environment's policy asks a second "
            "officer to approve a correction of this size; it is stored `awaiting_approval` "
            "and nothing is sent until POST /corrections/{correction_id}/approve."
        ),
        responses={
            201: CorrectionOut,
            202: CorrectionOut,
            200: CorrectionPreview,
            404: ErrorBody,
            409: ErrorBody,
            422: ErrorBody,
        },
    )(role_required(Role.OFFICER)(checked(status=422)(view)))


for _family in FAMILIES:
    _create_view(_family)


@api.get(
    "/corrections",
    operation_id="list_corrections",
    summary="List corrections, newest first. Role: auditor (any role).",
    responses={200: CorrectionList, 422: ErrorBody},
)
@role_required(Role.AUDITOR)
@checked(status=422)
def corrections_list(query: CorrectionListQuery):
    """Newest first; filter by operation, state, actor, since/until (dates); page with `before`."""
    day = lambda value, shift=0: (  # noqa: E731
        datetime.combine(value + timedelta(days=shift), time.min, UTC) if value else None
    )
    limit = min(query.limit, 200)
    rows = service.list_corrections(
        get_session(),
        operation=query.operation.value if query.operation else None,
        state=query.state.value if query.state else None,
        actor=query.actor or None,
        since=day(query.since),
        until=day(query.until, 1),
        before=query.before,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "corrections": [public(row) for row in rows],
        "next_before": rows[-1].id if more else None,
    }


@api.get(
    "/corrections/<int:correction_id>",
    operation_id="get_correction",
    summary="One correction; the bodies sent for officers and admins. Role: auditor (any role).",
    responses={200: CorrectionOut, 404: ErrorBody},
)
@role_required(Role.AUDITOR)
@validate_request()  # after role_required: no token is a 401 whatever the path says
def corrections_detail(path: CorrectionPath):
    """One correction; the bodies sent (values) for officers and admins only."""
    try:
        correction, calls = service.get_correction(get_session(), path.correction_id)
    except service.CorrectionNotFound as error:
        return api_error(404, str(error))
    return public(correction, calls, values=current_user.can(Role.OFFICER))


@api.post(
    "/corrections/<int:correction_id>/retry",
    operation_id="retry_correction",
    summary="Retry the calls Heap did not accept. Role: officer.",
    responses={200: CorrectionOut, 404: ErrorBody, 409: ErrorBody},
)
@role_required(Role.OFFICER)
@validate_request()
def corrections_retry(path: CorrectionPath):
    """Send again the calls of a correction that Heap has not accepted."""
    db = get_session()
    try:
        correction = service.retry(db, actor=current_user.email, correction_id=path.correction_id)
    except service.CorrectionNotFound as error:
        return api_error(404, str(error))
    except CorrectionInputError as error:
        return _refusal(error)
    return public(correction, service.get_correction(db, correction.id)[1])


# Four-eyes decisions (corrections/approval.py): who may not decide is a 403, a correction
# that no longer awaits approval — or that the policy, the app_id or the desk's deletions
# now refuse — a 409; nothing is sent in either case.
DECISION_STATUS = {
    "forbidden": 403,
    "self_approval": 403,
    "four_eyes": 403,
    "operation_disabled": 403,
    "wrong_state": 409,
    "reingestion_guard": 409,
    "policy": 409,
    "reason_required": 400,
}


def _decide(correction_id: int, run):
    """Run an approval step; answer with the correction as it is now, or the refusal."""
    db = get_session()
    try:
        run(db)
        return public(*service.get_correction(db, correction_id))
    except service.CorrectionNotFound as error:
        return api_error(404, str(error))
    except CorrectionInputError as error:
        return api_error(DECISION_STATUS.get(error.code, 422), str(error), error.code)


@api.post(
    "/corrections/<int:correction_id>/approve",
    operation_id="approve_correction",
    summary="Approve a correction awaiting approval; it is sent at once. Role: officer.",
    description=(
        "Role: officer or admin, not the correction's author, nor the account that created "
        "the author's or one the author created (403 `self_approval` / `four_eyes`, audited). "
        "Exactly the stored calls are sent; the answer holds Heap's outcome. 403 "
        "`operation_disabled`: the environment's policy no longer offers the operation. 409: "
        "not awaiting approval (`wrong_state`), or since the request the policy's guardrails "
        "(`policy`) or the desk's deletions (`reingestion_guard`) refuse it; nothing is sent."
    ),
    responses={200: CorrectionOut, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody},
)
@role_required(Role.OFFICER)
@checked()
def corrections_approve(path: CorrectionPath):
    """Four-eyes approval of a correction: sends exactly the calls stored for it"""
    return _decide(
        path.correction_id,
        lambda db: approval.approve(db, actor=current_user.email, correction_id=path.correction_id),
    )


@api.post(
    "/corrections/<int:correction_id>/reject",
    operation_id="reject_correction",
    summary="Reject (or, its author: withdraw) a correction awaiting approval. Role: officer.",
    description=(
        "Role: officer or admin; the author withdraws their own this way. Nothing is sent. "
        "400: no `reason`, or one over 2000 characters. 409: not awaiting approval."
    ),
    responses={200: CorrectionOut, 404: ErrorBody, 409: ErrorBody},
)
@role_required(Role.OFFICER)
@checked(optional_body=True)
def corrections_reject(path: CorrectionPath, body: CorrectionRejectBody):
    """Reject a correction awaiting approval, with a reason; nothing is sent"""
    return _decide(
        path.correction_id,
        lambda db: approval.reject(
            db, actor=current_user.email, correction_id=path.correction_id, reason=body.reason
        ),
    )
