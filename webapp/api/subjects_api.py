"""Subjects over the API: lookup by identifier, one subject, its receipt, deadline extension."""

from __future__ import annotations

from flask import current_app, jsonify
from flask_login import current_user

from webapp.accounts.access import role_required
from webapp.api.batch_models import (
    ExtendBody,
    LookupQuery,
    LookupResult,
    SubjectPath,
    SubjectView,
)
from webapp.api.blueprint import api
from webapp.api.common import checked
from webapp.api.evidence_api import unavailable
from webapp.api.schemas import ErrorBody
from webapp.db import get_session
from webapp.erasure import deadlines, lookup
from webapp.errors import api_error
from webapp.evidence import signing, tree_heads
from webapp.evidence.downloads import audited_download
from webapp.evidence.receipt import subject_receipt
from webapp.models import Role
from webapp.trail import exports


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def hit_json(hit: lookup.Hit) -> dict:
    """One row that held the subject, with its batch, Heap request and deletion ids."""
    subject, chunk = hit.subject, hit.heap_request
    return {
        "subject_id": subject.id,
        "batch_id": hit.batch.id,
        "batch_state": hit.batch.state,
        "environment_id": subject.environment_id,
        "environment": hit.environment,
        "row": subject.row_number,
        "kind": subject.kind,
        "classification": subject.classification,
        "problem": subject.problem,
        "state": subject.state,
        "received_on": _iso(subject.received_on),
        "due_on": _iso(subject.due_on),
        "extension_months": subject.extension_months,
        "subject_informed_on": _iso(subject.subject_informed_on),
        "extension_recorded_on": _iso(subject.extension_recorded_on),
        # Set when the extension came after the first month had ended: the deadline was missed.
        "extended_late_on": _iso(
            deadlines.extended_late_on(subject.received_on, subject.extension_recorded_on)
        ),
        "submitted_at": _iso(subject.submitted_at),
        "completed_at": _iso(subject.completed_at),
        "purged": subject.purged_at is not None,
        "heap_request": None
        if chunk is None
        else {
            "id": chunk.id,
            "chunk_index": chunk.chunk_index,
            "state": chunk.state,
            "status": chunk.heap_status,
            "deletion_request_ids": [d.deletion_request_id for d in hit.deletion_ids]
            or ([chunk.deletion_request_id] if chunk.deletion_request_id else []),
        },
    }


@api.get(
    "/subjects/lookup",
    operation_id="lookup_subject",
    responses={200: LookupResult},
    description=(
        "Role: any token (auditor, officer or admin). Exactly one of `identity` or `user_id`, "
        "optionally `environment_id`. Found by fingerprint, so it works after the raw "
        "identifiers are purged; the search itself is audited (by fingerprint)."
    ),
)
@role_required(Role.AUDITOR)
@checked()
def subjects_lookup(query: LookupQuery):
    """Every batch and state that held a subject"""
    if (query.identity is None) == (query.user_id is None):
        return api_error(400, "Give exactly one of 'identity' or 'user_id'.")
    kind = "identity" if query.identity is not None else "user_id"
    try:
        hits = lookup.lookup(
            get_session(),
            kind=kind,
            value=query.identity if query.identity is not None else query.user_id,
            environment_id=query.environment_id or None,
            actor=current_user.email,
        )
    except lookup.LookupRefused as error:
        return api_error(400, str(error), "invalid")
    return jsonify(
        deleted=any(hit.subject.state == "complete" for hit in hits),
        results=[hit_json(hit) for hit in hits],
    )


@api.get(
    "/subjects/<int:subject_id>",
    operation_id="get_subject",
    responses={200: SubjectView, 404: ErrorBody},
    description="Role: any token (auditor, officer or admin).",
)
@role_required(Role.AUDITOR)
@checked()
def subjects_detail(path: SubjectPath):
    """One subject row (by the id a lookup answered)"""
    hit = lookup.subject_record(get_session(), path.subject_id)
    if hit is None:
        return api_error(404, f"There is no subject {path.subject_id}.")
    return jsonify(hit_json(hit))


RECEIPT = {
    "description": "The receipt (a ZIP file); the download is audited",
    "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
}


@api.get(
    "/subjects/<int:subject_id>/receipt.zip",
    operation_id="subject_receipt_zip",
    responses={200: RECEIPT, 404: ErrorBody, 503: ErrorBody},
    description=(
        "Role: any token (auditor, officer or admin). A ZIP with the subject's fingerprint, "
        "the audit entries that show it sent to Heap and completed with their inclusion "
        "proofs, the signed tree head, a one-page PDF, the public key, a signed manifest and "
        "verify.py. 503 (code `no_signing_key` or `no_tree_head`): no signed tree head can be "
        "had now."
    ),
)
@role_required(Role.AUDITOR)
@audited_download("receipt.zip", "subject")  # above checked(): it reads the URL's subject_id
@checked()
def subjects_receipt(path: SubjectPath):
    """The subject's receipt"""
    subject_id = path.subject_id
    try:
        chunks = subject_receipt(current_app._get_current_object(), subject_id)
    except deadlines.SubjectNotFound as error:
        return api_error(404, str(error))
    except (signing.SigningKeyError, tree_heads.TreeHeadError) as error:
        return unavailable(error)
    return exports.download(
        chunks, filename=f"subject-{subject_id}-receipt.zip", mimetype="application/zip"
    )


@api.post(
    "/subjects/<int:subject_id>/extend",
    operation_id="extend_subject_deadline",
    responses={200: SubjectView, 404: ErrorBody, 409: ErrorBody},
    description=(
        "Role: officer or admin. `months` 1 or 2, the `reason`, and `subject_informed_on`, "
        "the date the subject was told (within the first month). 409: refused because of the "
        "subject's row or today's date (not open, told before the request arrived, after "
        "the first month or after today, more than 2 months in total); nothing changed."
    ),
)
@role_required(Role.OFFICER)
@checked()
def subjects_extend(path: SubjectPath, body: ExtendBody):
    """Extend the subject's deadline by 1 or 2 months (Art. 12(3); at most 2 in total)"""
    session = get_session()
    try:
        deadlines.extend(
            session,
            actor=current_user.email,
            subject_id=path.subject_id,
            months=body.months,
            reason=body.reason,
            subject_informed_on=body.subject_informed_on,
        )
    except deadlines.DeadlineError as error:
        codes = {404: "not_found", 409: "conflict"}
        return api_error(error.status, str(error), codes.get(error.status, "invalid"))
    return jsonify(hit_json(lookup.subject_record(session, path.subject_id)))
