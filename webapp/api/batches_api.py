"""Batches over the API: upload, list, detail, and the workflow steps."""

from __future__ import annotations

from datetime import date

from flask import jsonify, request
from flask_login import current_user

from webapp.accounts.access import role_required
from webapp.api.batch_json import detail_json, fail, summary
from webapp.api.blueprint import api
from webapp.api.common import BadInput, json_body, whole_number
from webapp.api.openapi import op, query
from webapp.db import get_session
from webapp.erasure import batches as service
from webapp.erasure import queries
from webapp.errors import api_error
from webapp.models import MAX_ID, BatchState, Environment, Role

MAX_PROBLEMS = 100
MAX_PER_PAGE = 200


def _upload_fields() -> dict:
    """The multipart form of POST /batches, checked."""
    form = request.form
    raw_env = form.get("environment_id", "").strip()
    digits = raw_env.isascii() and raw_env.isdigit() and len(raw_env) <= len(str(MAX_ID))
    if not digits or not 0 < int(raw_env) <= MAX_ID:
        raise BadInput("Send 'environment_id', the id of the Heap environment.")
    environment_id = int(raw_env)
    received = form.get("received_on", "").strip()
    try:
        received_on = date.fromisoformat(received) if received else None
    except ValueError:
        raise BadInput("'received_on' must be a date in the form YYYY-MM-DD.") from None
    upload = request.files.get("file")
    if upload is None:
        raise BadInput("Send the CSV as the multipart field 'file'.")
    return {
        "environment_id": environment_id,
        "received_on": received_on,
        "reference": form.get("reference"),
        "filename": upload.filename,
        "data": upload.read(),  # bounded by MAX_CONTENT_LENGTH
    }


@api.post("/batches")
@role_required(Role.OFFICER)
def batches_create():
    """Upload a CSV (multipart: file, environment_id, received_on?, reference?)."""
    try:
        batch, upload = service.create_batch(
            get_session(), actor=current_user.email, source="api", **_upload_fields()
        )
    except BadInput as error:
        return api_error(400, str(error), "invalid")
    except service.BatchError as error:
        return fail(error)
    problems = [row for row in upload.rows if row.problem]
    body = summary(batch, 0, get_session().get(Environment, batch.environment_id).name)
    body["problems"] = [
        {"row": row.number, "classification": row.classification, "reason": row.problem}
        for row in problems[:MAX_PROBLEMS]
    ]
    body["problems_total"] = len(problems)
    body["ignored_columns"] = upload.ignored_columns  # columns the desk does not read
    body["warnings"] = [
        {"row": row.number, "warning": row.warning} for row in upload.rows if row.warning
    ][:MAX_PROBLEMS]
    return jsonify(body), 201


@api.get("/batches")
@role_required(Role.AUDITOR)
def batches_list():
    """Batches newest first; filters state and environment_id; page and per_page."""
    state = request.args.get("state") or None
    if state and state not in {s.value for s in BatchState}:
        return api_error(
            400, f"Unknown state; use one of {', '.join(s.value for s in BatchState)}."
        )
    try:
        environment_id = whole_number("environment_id") or None
        page = whole_number("page", 1, minimum=1)
        per_page = min(whole_number("per_page", 25, minimum=1), MAX_PER_PAGE)
    except BadInput as error:
        return api_error(400, str(error))
    result = queries.list_batches(
        get_session(), state=state, environment_id=environment_id, page=page, per_page=per_page
    )
    return jsonify(
        batches=[summary(row.batch, row.complete, row.environment) for row in result.items],
        page=result.page,
        pages=result.pages,
        total=result.total,
    )


@api.get("/batches/<int:batch_id>")
@role_required(Role.AUDITOR)
def batches_detail(batch_id: int):
    """One batch with its progress, deadlines and Heap requests."""
    try:
        return jsonify(detail_json(queries.batch_detail(get_session(), batch_id)))
    except service.BatchError as error:
        return fail(error)


def _step(batch_id: int, run):
    """Run a workflow step and answer with the batch as it is now."""
    session = get_session()
    try:
        run(session)
        return jsonify(detail_json(queries.batch_detail(session, batch_id)))
    except BadInput as error:
        return api_error(400, str(error), "invalid")
    except service.BatchError as error:
        return fail(error)


def _optional_body() -> dict:
    return json_body() if request.get_data() else {}


def _text(body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadInput(f"'{key}' must be a string.")
    return value


@api.post("/batches/<int:batch_id>/approve")
@role_required(Role.OFFICER)
def batches_approve(batch_id: int):
    """Approve the manifest (four-eyes); optional {"sha256", "manifest_sha256"} must match."""

    def run(session):
        body = _optional_body()
        return service.approve(
            session,
            actor=current_user.email,
            batch_id=batch_id,
            sha256=_text(body, "sha256"),
            manifest_sha256=_text(body, "manifest_sha256"),
        )

    return _step(batch_id, run)


@api.post("/batches/<int:batch_id>/reject")
@role_required(Role.OFFICER)
def batches_reject(batch_id: int):
    """Reject with {"reason": "..."}."""
    return _step(
        batch_id,
        lambda s: service.reject(
            s,
            actor=current_user.email,
            batch_id=batch_id,
            reason=_text(_optional_body(), "reason") or "",
        ),
    )


@api.post("/batches/<int:batch_id>/cancel")
@role_required(Role.OFFICER)
def batches_cancel(batch_id: int):
    """Withdraw before submission with {"reason": "..."} (the uploader or an admin)."""
    return _step(
        batch_id,
        lambda s: service.cancel(
            s,
            actor=current_user.email,
            batch_id=batch_id,
            reason=_text(_optional_body(), "reason") or "",
        ),
    )


@api.post("/batches/<int:batch_id>/retry")
@role_required(Role.OFFICER)
def batches_retry(batch_id: int):
    """Send a failed or waiting batch again now."""
    return _step(batch_id, lambda s: service.retry(s, actor=current_user.email, batch_id=batch_id))


ID = [{"name": "batch_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
UPLOAD_BODY = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["file", "environment_id"],
            "properties": {
                "file": {"type": "string", "format": "binary", "description": "UTF-8 CSV"},
                "environment_id": {"type": "integer"},
                "received_on": {"type": "string", "format": "date"},
                "reference": {"type": "string", "maxLength": 255},
            },
        }
    }
}
STEP_ERRORS = {
    "200": {"description": "The batch as it is now (as GET /batches/{batch_id})"},
    "404": {"description": "No such batch"},
    "409": {"description": "Wrong state, or self-approval (code 'self_approval')"},
}
APPROVE_ERRORS = {
    **STEP_ERRORS,
    "403": {
        "description": "Role does not allow this, or four-eyes refuses this approver (code "
        "'four_eyes': the uploader created the approver's account or the approver created "
        "the uploader's, or the approver's account is younger than DESK_APPROVER_MIN_AGE_HOURS)"
    },
    "409": {
        "description": "Wrong state, self-approval (code 'self_approval'), or a confirmed "
        "sha256 / manifest_sha256 that is not the batch's; nothing changed"
    },
}
CANCEL_ERRORS = {
    **STEP_ERRORS,
    "400": {"description": "No reason, or one longer than 2000 characters; nothing changed"},
    "403": {
        "description": "Role does not allow this, the caller is neither the uploader nor an "
        "admin, or the batch is approved and the caller is not an admin; nothing changed"
    },
    "409": {"description": "Wrong state, or already (partly) sent to Heap"},
}


def _json(properties: dict, required: list | None = None) -> dict:
    schema = {"type": "object", "properties": properties, "required": required or []}
    return {"application/json": {"schema": schema}}


PATHS = {
    "/batches": {
        "post": op(
            "Upload a list of subjects (validated at once; waits for approval)",
            "officer",
            body=UPLOAD_BODY,
            responses={
                "201": {
                    "description": "id, state, counts, problems (first 100), sha256, and "
                    "ignored_columns: header names other than user_id, identity (email), "
                    "received_on and reference, which are not read"
                },
                "400": {"description": "The upload was refused as a whole; nothing stored"},
            },
        ),
        "get": op(
            "List batches, newest first",
            "auditor",
            params=[
                query("state", "Only this state", {"enum": [s.value for s in BatchState]}),
                query("environment_id", "Only this environment", {"type": "integer"}),
                query("page", "Page (1-based)", {"type": "integer"}),
                query("per_page", "Batches a page (≤ 200)", {"type": "integer"}),
            ],
        ),
    },
    "/batches/{batch_id}": {
        "get": op(
            "A batch: state, counts, progress, deadlines, Heap requests",
            "auditor",
            params=ID,
            responses={"200": {"description": "OK"}, "404": {"description": "No such batch"}},
        )
    },
    "/batches/{batch_id}/approve": {
        "post": op(
            "Approve the batch's manifest (four-eyes); queues submission of exactly that set",
            "officer",
            params=ID,
            body=_json(
                {
                    "sha256": {
                        "type": "string",
                        "description": "the file's SHA-256 you checked: must match, if given",
                    },
                    "manifest_sha256": {
                        "type": "string",
                        "description": "the manifest's SHA-256 you checked (GET "
                        "/batches/{batch_id} → manifest.sha256): must match, if given",
                    },
                }
            ),
            responses=APPROVE_ERRORS,
        )
    },
    "/batches/{batch_id}/reject": {
        "post": op(
            "Reject with a reason",
            "officer",
            params=ID,
            body=_json({"reason": {"type": "string", "maxLength": 2000}}, ["reason"]),
            responses=STEP_ERRORS,
        )
    },
    "/batches/{batch_id}/cancel": {
        "post": op(
            "Cancel before submission, with a reason (the uploader or an admin; once "
            "approved, an admin only)",
            "officer",
            params=ID,
            body=_json(
                {"reason": {"type": "string", "minLength": 1, "maxLength": 2000}}, ["reason"]
            ),
            responses=CANCEL_ERRORS,
        )
    },
    "/batches/{batch_id}/retry": {
        "post": op(
            "Retry a failed or waiting batch now", "officer", params=ID, responses=STEP_ERRORS
        )
    },
}
