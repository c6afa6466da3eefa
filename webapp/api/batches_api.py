"""Batches over the API: upload, list, detail, and the workflow steps."""

from __future__ import annotations

from flask import jsonify
from flask_login import current_user

from webapp.accounts.access import role_required
from webapp.api.batch_json import detail_json, fail, summary
from webapp.api.batch_models import (
    ApproveBody,
    BatchCreated,
    BatchDetail,
    BatchList,
    BatchListQuery,
    BatchPath,
    CancelBody,
    RejectBody,
    UploadForm,
)
from webapp.api.blueprint import api
from webapp.api.common import checked
from webapp.api.schemas import ErrorBody
from webapp.db import get_session
from webapp.erasure import batches as service
from webapp.erasure import queries
from webapp.models import Environment, Role

MAX_PROBLEMS = 100
MAX_PER_PAGE = 200

# What a workflow step can answer besides the batch.
STEP_ERRORS = {404: ErrorBody, 409: ErrorBody}


@api.post(
    "/batches",
    operation_id="upload_batch",
    responses={201: BatchCreated, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody, 415: ErrorBody},
    description=(
        "Role: officer or admin. multipart/form-data: `file` (the CSV), `environment_id`, "
        "optionally `received_on` and `reference`. Every row is classified (valid, malformed, "
        "duplicate in the file, already requested); the batch then awaits a second officer's "
        "approval. 400: the upload is refused as a whole (bad field, unreadable or empty "
        "file, too many rows); 404: no such environment; 409: the environment is not Main "
        "Production, or `received_on` is after today; nothing is stored. 413: larger than "
        "the upload limit."
    ),
)
@role_required(Role.OFFICER)
@checked()
def batches_create(form: UploadForm):
    """Upload a list of subjects (validated at once; nothing is sent until approved)"""
    try:
        batch, upload = service.create_batch(
            get_session(),
            actor=current_user.email,
            source="api",
            environment_id=form.environment_id,
            received_on=form.received_on,
            reference=form.reference,
            filename=form.file.filename,
            data=form.file.data,
        )
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


@api.get(
    "/batches",
    operation_id="list_batches",
    responses={200: BatchList},
    description=(
        "Role: any token (auditor, officer or admin). Filters: `state`, `environment_id`; "
        "pages: `page`, `per_page` (at most 200 a page)."
    ),
)
@role_required(Role.AUDITOR)
@checked()
def batches_list(query: BatchListQuery):
    """List batches, newest first"""
    result = queries.list_batches(
        get_session(),
        state=query.state.value if query.state else None,
        environment_id=query.environment_id or None,
        page=query.page,
        per_page=min(query.per_page, MAX_PER_PAGE),
    )
    return jsonify(
        batches=[summary(row.batch, row.complete, row.environment) for row in result.items],
        page=result.page,
        pages=result.pages,
        total=result.total,
    )


@api.get(
    "/batches/<int:batch_id>",
    operation_id="get_batch",
    responses={200: BatchDetail, 404: ErrorBody},
    description=(
        "Role: any token (auditor, officer or admin). Each Heap request lists every "
        "`deletion_request_id` Heap returned for it, and Heap's status."
    ),
)
@role_required(Role.AUDITOR)
@checked()
def batches_detail(path: BatchPath):
    """A batch: state, counts, manifest, progress, deadlines, Heap requests"""
    try:
        return jsonify(detail_json(queries.batch_detail(get_session(), path.batch_id)))
    except service.BatchError as error:
        return fail(error)


def _step(batch_id: int, run):
    """Run a workflow step and answer with the batch as it is now."""
    session = get_session()
    try:
        run(session)
        return jsonify(detail_json(queries.batch_detail(session, batch_id)))
    except service.BatchError as error:
        return fail(error)


@api.post(
    "/batches/<int:batch_id>/approve",
    operation_id="approve_batch",
    responses={200: BatchDetail, **STEP_ERRORS},
    description=(
        "Role: officer or admin, not the batch's uploader (four-eyes: approver ≠ uploader). "
        "The body is optional: `sha256` and `manifest_sha256`, if given, must be the batch's; "
        "a batch sending more than 1,000 subjects needs `checked_preview`: true (400 "
        "otherwise). "
        "403 (code `four_eyes`): the uploader created the approver's account or the approver "
        "the uploader's, or the approver's account is younger than "
        "DESK_APPROVER_MIN_AGE_HOURS. 409: not awaiting approval, self-approval (code "
        "`self_approval`), or a hash that is not the batch's; nothing changed."
    ),
)
@role_required(Role.OFFICER)
@checked(optional_body=True)
def batches_approve(path: BatchPath, body: ApproveBody):
    """Approve the batch's manifest (four-eyes); queues submission of exactly that set"""
    return _step(
        path.batch_id,
        lambda session: service.approve(
            session,
            actor=current_user.email,
            batch_id=path.batch_id,
            sha256=body.sha256,
            manifest_sha256=body.manifest_sha256,
            checked_preview=body.checked_preview,
        ),
    )


@api.post(
    "/batches/<int:batch_id>/reject",
    operation_id="reject_batch",
    responses={200: BatchDetail, **STEP_ERRORS},
    description=(
        "Role: officer or admin, not the batch's uploader (four-eyes: approver ≠ uploader). "
        "400: no reason, or one longer than 2000 characters. 409: not awaiting approval."
    ),
)
@role_required(Role.OFFICER)
@checked(optional_body=True)
def batches_reject(path: BatchPath, body: RejectBody):
    """Reject the batch with a reason"""
    return _step(
        path.batch_id,
        lambda session: service.reject(
            session, actor=current_user.email, batch_id=path.batch_id, reason=body.reason
        ),
    )


@api.post(
    "/batches/<int:batch_id>/cancel",
    operation_id="cancel_batch",
    responses={200: BatchDetail, **STEP_ERRORS},
    description=(
        "Role: officer or admin; the batch's uploader or an admin, and once approved an admin "
        "only (403 otherwise). 400: no reason, or one longer than 2000 characters. 409: "
        "already (partly) sent to Heap, or in a state that cannot be cancelled; nothing "
        "changed."
    ),
)
@role_required(Role.OFFICER)
@checked(optional_body=True)
def batches_cancel(path: BatchPath, body: CancelBody):
    """Cancel the batch before submission, with a reason"""
    return _step(
        path.batch_id,
        lambda session: service.cancel(
            session, actor=current_user.email, batch_id=path.batch_id, reason=body.reason
        ),
    )


@api.post(
    "/batches/<int:batch_id>/retry",
    operation_id="retry_batch",
    responses={200: BatchDetail, **STEP_ERRORS},
    description=(
        "Role: officer or admin. 409: the batch is neither failed nor waiting for a retry."
    ),
)
@role_required(Role.OFFICER)
@checked()
def batches_retry(path: BatchPath):
    """Send a failed or waiting batch again now"""
    return _step(
        path.batch_id,
        lambda session: service.retry(session, actor=current_user.email, batch_id=path.batch_id),
    )
