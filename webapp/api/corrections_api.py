"""Corrections over the API: every Heap write operation, single or bulk, and their history."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

from flask import jsonify, request
from flask_login import current_user

from webapp.accounts.access import role_required
from webapp.api.blueprint import api
from webapp.api.common import BadInput, bad_input, json_body, whole_number
from webapp.api.openapi import op, query
from webapp.corrections import service
from webapp.corrections.plans import CorrectionInputError
from webapp.db import get_session
from webapp.errors import api_error
from webapp.models import MAX_ID, Correction, CorrectionCall, CorrectionOperation, Role

FAMILIES = ("identify", "user-properties", "account-properties", "link-account", "events")
OPTIONS = ("environment_id", "override_reason", "confirm_warnings", "preview")
# Refusals an officer can answer (override, confirm) are conflicts, not malformed input.
CONFLICTS = {"reingestion_guard", "confirmation_required", "not_retryable"}


def _options(body: dict) -> tuple[int, str | None, bool, bool]:
    env_id = body.get("environment_id")
    if isinstance(env_id, bool) or not isinstance(env_id, int) or not 0 < env_id <= MAX_ID:
        raise BadInput("'environment_id' must be the environment's numeric id.")
    reason = body.get("override_reason")
    if reason is not None and not isinstance(reason, str):
        raise BadInput("'override_reason' must be a string.")
    flags = [body.get(name, False) for name in ("confirm_warnings", "preview")]
    if not all(isinstance(flag, bool) for flag in flags):
        raise BadInput("'confirm_warnings' and 'preview' must be true or false.")
    return env_id, reason, flags[0], flags[1]


def _refusal(error: CorrectionInputError):
    status = 409 if error.code in CONFLICTS else 422
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


def corrections_create(family: str):
    """Validate, then send (or with "preview": true only show) one correction."""
    db = get_session()
    try:
        body = json_body()
        env_id, reason, confirm, dry_run = _options(body)
        data = {key: value for key, value in body.items() if key not in OPTIONS}
        if dry_run:
            seen = service.preview(db, environment_id=env_id, family=family, data=data)
            return jsonify(_preview(seen)), 200
        correction = service.send(
            db,
            actor=current_user.email,
            environment_id=env_id,
            family=family,
            data=data,
            override_reason=reason,
            confirm_warnings=confirm,
        )
    except BadInput as error:
        return bad_input(error)
    except CorrectionInputError as error:
        return _refusal(error)
    return jsonify(public(correction, service.get_correction(db, correction.id)[1])), 201


def _create_view(family: str):
    @role_required(Role.OFFICER)
    def view():
        """Send one correction of this family (see corrections_create)."""
        return corrections_create(family)

    return view


for _family in FAMILIES:
    api.add_url_rule(
        f"/corrections/{_family}",
        endpoint=f"corrections_{_family.replace('-', '_')}",
        view_func=_create_view(_family),
        methods=["POST"],
    )


def _day(name: str, shift: int = 0) -> datetime | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return datetime.combine(date.fromisoformat(raw) + timedelta(days=shift), time.min, UTC)
    except ValueError:
        raise BadInput(f"'{name}' must be a date (YYYY-MM-DD).") from None


@api.get("/corrections")
@role_required(Role.AUDITOR)
def corrections_list():
    """Newest first; filter by operation, actor, since/until (dates); page with `before`."""
    try:
        operation = request.args.get("operation") or None
        if operation and operation not in {o.value for o in CorrectionOperation}:
            raise BadInput(f"Unknown operation '{operation}'.")
        limit = min(whole_number("limit", 50, minimum=1), 200)
        rows = service.list_corrections(
            get_session(),
            operation=operation,
            actor=request.args.get("actor") or None,
            since=_day("since"),
            until=_day("until", shift=1),
            before=whole_number("before", minimum=1),
            limit=limit + 1,
        )
    except BadInput as error:
        return bad_input(error)
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify(
        corrections=[public(row) for row in rows], next_before=rows[-1].id if more else None
    )


@api.get("/corrections/<int:correction_id>")
@role_required(Role.AUDITOR)
def corrections_detail(correction_id: int):
    """One correction; the bodies sent (values) for officers and admins only."""
    try:
        correction, calls = service.get_correction(get_session(), correction_id)
    except service.CorrectionNotFound as error:
        return api_error(404, str(error))
    return jsonify(public(correction, calls, values=current_user.can(Role.OFFICER)))


@api.post("/corrections/<int:correction_id>/retry")
@role_required(Role.OFFICER)
def corrections_retry(correction_id: int):
    """Send again the calls of a correction that Heap has not accepted."""
    db = get_session()
    try:
        correction = service.retry(db, actor=current_user.email, correction_id=correction_id)
    except service.CorrectionNotFound as error:
        return api_error(404, str(error))
    except CorrectionInputError as error:
        return _refusal(error)
    return jsonify(public(correction, service.get_correction(db, correction.id)[1]))


_OPTIONS_SCHEMA = {
    "environment_id": {"type": "integer"},
    "override_reason": {"type": "string", "description": "Needed past the re-ingestion guard."},
    "confirm_warnings": {"type": "boolean", "description": "Send despite identify warnings."},
    "preview": {"type": "boolean", "description": "Only validate and show the calls."},
}
_BODIES = {
    "identify": ("Identify a user_id as an identity", ["user_id", "identity"], {}),
    "user-properties": (
        "Add user properties (single: identity + properties; bulk: users, any size)",
        [],
        {"users": {"type": "array", "items": {"type": "object"}}},
    ),
    "account-properties": (
        "Add account properties (single: account_id + properties; bulk: accounts)",
        [],
        {"accounts": {"type": "array", "items": {"type": "object"}}},
    ),
    "link-account": ("Link a user to an account", ["identity", "account_id"], {}),
    "events": (
        "Track an event (with optional user_properties), or bulk: events, any size",
        [],
        {"events": {"type": "array", "items": {"type": "object"}}},
    ),
}


def _create_op(family: str) -> dict:
    summary, required, extra = _BODIES[family]
    schema = {
        "type": "object",
        "required": ["environment_id", *required],
        "properties": {**_OPTIONS_SCHEMA, **extra},
        "additionalProperties": True,
    }
    return op(
        summary,
        "officer",
        body={"application/json": {"schema": schema}},
        responses={
            "201": {"description": "Sent; the outcome (state, heap_status, message, calls)"},
            "200": {"description": 'Preview only ("preview": true)'},
            "409": {"description": "Re-ingestion guard or unconfirmed warnings"},
            "422": {"description": "Breaks a Heap rule; nothing stored or sent"},
        },
    )


PATHS = {
    **{f"/corrections/{family}": {"post": _create_op(family)} for family in FAMILIES},
    "/corrections": {
        "get": op(
            "List corrections, newest first",
            "auditor",
            params=[
                query("operation", "Operation, e.g. identify or track_bulk"),
                query("actor", "Officer's e-mail"),
                query("since", "From this date (YYYY-MM-DD)"),
                query("until", "To this date, inclusive"),
                query("before", "Page: corrections with a smaller id", {"type": "integer"}),
                query("limit", "Page size (1-200, default 50)", {"type": "integer"}),
            ],
        )
    },
    "/corrections/{correction_id}": {
        "get": op("One correction; bodies sent for officers and admins", "auditor")
    },
    "/corrections/{correction_id}/retry": {
        "post": op("Retry the calls Heap did not accept", "officer")
    },
}
