"""Subjects over the API: lookup by identifier, one subject, its receipt, deadline extension."""

from __future__ import annotations

from datetime import date

from flask import current_app, jsonify, request
from flask_login import current_user

from webapp.accounts.access import role_required
from webapp.api.blueprint import api
from webapp.api.common import BadInput, json_body, whole_number
from webapp.api.evidence_api import evidence_file, unavailable
from webapp.api.openapi import op, query
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


@api.get("/subjects/lookup")
@role_required(Role.AUDITOR)
def subjects_lookup():
    """Every batch and state for a subject: environment_id and identity= or user_id=."""
    identity, user_id = request.args.get("identity"), request.args.get("user_id")
    if (identity is None) == (user_id is None):
        return api_error(400, "Give exactly one of 'identity' or 'user_id'.")
    kind, value = ("identity", identity) if identity is not None else ("user_id", user_id)
    try:
        hits = lookup.lookup(
            get_session(),
            kind=kind,
            value=value,
            environment_id=whole_number("environment_id") or None,
            actor=current_user.email,
        )
    except BadInput as error:
        return api_error(400, str(error))
    except lookup.LookupRefused as error:
        return api_error(400, str(error), "invalid")
    return jsonify(
        deleted=any(hit.subject.state == "complete" for hit in hits),
        results=[hit_json(hit) for hit in hits],
    )


@api.get("/subjects/<int:subject_id>")
@role_required(Role.AUDITOR)
def subjects_detail(subject_id: int):
    """One subject row (by the id a lookup returned)."""
    hit = lookup.subject_record(get_session(), subject_id)
    if hit is None:
        return api_error(404, f"There is no subject {subject_id}.")
    return jsonify(hit_json(hit))


@api.get("/subjects/<int:subject_id>/receipt.zip")
@role_required(Role.AUDITOR)
@audited_download("receipt.zip", "subject")
def subjects_receipt(subject_id: int):
    """The subject's receipt: its entries with their proofs, the signed tree head, verify.py."""
    try:
        chunks = subject_receipt(current_app._get_current_object(), subject_id)
    except deadlines.SubjectNotFound as error:
        return api_error(404, str(error))
    except (signing.SigningKeyError, tree_heads.TreeHeadError) as error:
        return unavailable(error)
    return exports.download(
        chunks, filename=f"subject-{subject_id}-receipt.zip", mimetype="application/zip"
    )


def _extension(body: dict) -> dict:
    months = body.get("months")
    if isinstance(months, bool) or months not in (1, 2):
        raise BadInput("'months' must be 1 or 2.")
    reason = body.get("reason")
    if not isinstance(reason, str):
        raise BadInput("'reason' must be a string.")
    try:
        informed = date.fromisoformat(str(body.get("subject_informed_on")))
    except ValueError:
        raise BadInput("'subject_informed_on' must be a date in the form YYYY-MM-DD.") from None
    return {"months": months, "reason": reason, "subject_informed_on": informed}


@api.post("/subjects/<int:subject_id>/extend")
@role_required(Role.OFFICER)
def subjects_extend(subject_id: int):
    """Extend the deadline: months 1|2, reason, subject_informed_on (Art. 12(3))."""
    session = get_session()
    try:
        deadlines.extend(
            session, actor=current_user.email, subject_id=subject_id, **_extension(json_body())
        )
    except BadInput as error:
        return api_error(400, str(error), "invalid")
    except deadlines.DeadlineError as error:
        return api_error(
            error.status, str(error), "not_found" if error.status == 404 else "invalid"
        )
    return jsonify(hit_json(lookup.subject_record(session, subject_id)))


SUBJECT_ID = [{"name": "subject_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
PATHS = {
    "/subjects/lookup": {
        "get": op(
            "Every batch and state that held a subject (by fingerprint; works after purge)",
            "auditor",
            params=[
                query("environment_id", "Only this environment", {"type": "integer"}),
                query("identity", "The identity (exact, case-sensitive)"),
                query("user_id", "The Heap user_id", {"type": "integer"}),
            ],
            responses={
                "200": {"description": "deleted (bool) and results"},
                "400": {"description": "Neither or both identifiers, or an invalid one"},
            },
        )
    },
    "/subjects/{subject_id}": {
        "get": op(
            "One subject row",
            "auditor",
            params=SUBJECT_ID,
            responses={"200": {"description": "OK"}, "404": {"description": "No such subject"}},
        )
    },
    "/subjects/{subject_id}/receipt.zip": {
        "get": evidence_file(
            "The subject's receipt: its fingerprint, the audit entries that show it sent to "
            "Heap and completed with their inclusion proofs, the signed tree head, a one-page "
            "PDF, the public key, a signed manifest and verify.py",
            "application/zip",
            SUBJECT_ID,
            signed=True,
        )
    },
    "/subjects/{subject_id}/extend": {
        "post": op(
            "Extend the deadline by 1 or 2 months (at most 2 in total)",
            "officer",
            params=SUBJECT_ID,
            body={
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["months", "reason", "subject_informed_on"],
                        "properties": {
                            "months": {"enum": [1, 2]},
                            "reason": {"type": "string", "maxLength": 2000},
                            "subject_informed_on": {"type": "string", "format": "date"},
                        },
                    }
                }
            },
            responses={
                "200": {"description": "The subject after the extension"},
                "400": {"description": "Refused (e.g. told after the first month)"},
                "404": {"description": "No such subject"},
            },
        )
    },
}
