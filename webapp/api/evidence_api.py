"""Evidence over the API: batch reports, certificates, evidence packs, signed checkpoints."""

from __future__ import annotations

from flask import Response, current_app, jsonify, request
from flask_login import current_user

from webapp.accounts.access import role_required
from webapp.api.blueprint import api
from webapp.api.common import BadInput, whole_number
from webapp.api.openapi import op, query
from webapp.db import get_session
from webapp.erasure.batches import BatchNotFound
from webapp.erasure.deadlines import SubjectNotFound
from webapp.errors import api_error
from webapp.evidence import certificates, checkpoints, signing, tree_heads
from webapp.evidence import reports as evidence_reports
from webapp.evidence.downloads import audited_download
from webapp.evidence.pack import evidence_pack
from webapp.models import Role
from webapp.trail import exports

MAX_LIMIT = 1000
FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def flag(name: str, default: bool) -> bool:
    """A yes/no query parameter (1/0, true/false, yes/no); ValueError names a bad one."""
    raw = request.args.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in FLAGS:
        raise ValueError(f"'{name}' must be 1 or 0, not {raw!r}.")
    return FLAGS[raw]


def pdf_response(data: bytes, filename: str) -> Response:
    """A PDF attachment."""
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def unavailable(error: signing.SigningKeyError | tree_heads.TreeHeadError):
    """503: evidence needs a signing key and a signed tree head, and one could not be had."""
    if isinstance(error, signing.SigningKeyError):
        return api_error(503, str(error), "no_signing_key")
    return api_error(503, str(error), "no_tree_head")


@api.get("/batches/<int:batch_id>/report.csv")
@role_required(Role.AUDITOR)
@audited_download("report.csv", "batch")
def batch_report_csv(batch_id: int):
    """Every row of the batch as CSV, streamed; `masked=1` masks identifiers."""
    try:
        masked = flag("masked", False)
        app = current_app._get_current_object()
        chunks = evidence_reports.batch_report(app, batch_id, masked=masked)
    except ValueError as error:
        return api_error(404 if isinstance(error, BatchNotFound) else 400, str(error))
    return exports.download(chunks, filename=f"batch-{batch_id}-report.csv", mimetype="text/csv")


@api.get("/batches/<int:batch_id>/certificate.pdf")
@role_required(Role.AUDITOR)
@audited_download("certificate.pdf", "batch")
def batch_certificate_pdf(batch_id: int):
    """The batch's deletion certificate (PDF)."""
    try:
        data = certificates.issue_batch_certificate(get_session(), batch_id)
    except BatchNotFound as error:
        return api_error(404, str(error))
    return pdf_response(data, f"batch-{batch_id}-certificate.pdf")


@api.get("/subjects/<int:subject_id>/certificate.pdf")
@role_required(Role.AUDITOR)
@audited_download("certificate.pdf", "subject")
def subject_certificate_pdf(subject_id: int):
    """One subject's deletion certificate (PDF)."""
    try:
        data = certificates.issue_subject_certificate(get_session(), subject_id)
    except SubjectNotFound as error:
        return api_error(404, str(error))
    return pdf_response(data, f"subject-{subject_id}-certificate.pdf")


@api.get("/batches/<int:batch_id>/evidence.zip")
@role_required(Role.AUDITOR)
@audited_download("evidence.zip", "batch")
def batch_evidence_zip(batch_id: int):
    """The evidence pack, streamed; identifiers in its report are masked unless `masked=0`."""
    try:
        masked = flag("masked", True)
        chunks = evidence_pack(current_app._get_current_object(), batch_id, masked=masked)
    except (signing.SigningKeyError, tree_heads.TreeHeadError) as error:
        return unavailable(error)
    except ValueError as error:
        return api_error(404 if isinstance(error, BatchNotFound) else 400, str(error))
    return exports.download(
        chunks, filename=f"batch-{batch_id}-evidence.zip", mimetype="application/zip"
    )


@api.get("/audit/checkpoints")
@role_required(Role.AUDITOR)
def checkpoints_list():
    """Signed checkpoints in seq order: `after` (seq) and `limit` (≤ 1000) page through them."""
    try:
        after = whole_number("after", 0)
        limit = min(whole_number("limit", 100, minimum=1), MAX_LIMIT)
    except BadInput as error:
        return api_error(400, str(error))
    rows = checkpoints.page(get_session(), after=after, limit=limit)
    items = [{"id": row.id, "actor": row.actor, **checkpoints.checkpoint_dict(row)} for row in rows]
    next_after = items[-1]["seq"] if len(items) == limit else None
    return jsonify(checkpoints=items, next_after=next_after)


@api.post("/audit/checkpoints")
@role_required(Role.AUDITOR)
def checkpoints_create():
    """Sign the chain's head now (harmless, so auditors may ask for one)."""
    try:
        row = checkpoints.sign_checkpoint(get_session(), actor=current_user.email)
    except signing.SigningKeyError as error:
        return unavailable(error)
    except checkpoints.CheckpointError as error:
        return api_error(409, str(error))
    return jsonify({"id": row.id, "actor": row.actor, **checkpoints.checkpoint_dict(row)}), 201


@api.get("/audit/public-key")
@role_required(Role.AUDITOR)
def public_key():
    """The Ed25519 public key that signs checkpoints and evidence packs."""
    try:
        return jsonify(signing.public_key().as_dict())
    except signing.SigningKeyError as error:
        return unavailable(error)


@api.get("/deadlines/report.csv")
@role_required(Role.AUDITOR)
def deadline_report_csv():
    """Overdue and due-within-7-days subjects as CSV (fingerprints, no identifiers)."""
    app = current_app._get_current_object()
    return exports.download(
        evidence_reports.deadline_report(app), filename="deadlines.csv", mimetype="text/csv"
    )


MASKED = query("masked", "1 masks identifiers (a***@b***.com), 0 shows them while retained")
BATCH = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "integer"}}
SUBJECT = {"name": "subject_id", "in": "path", "required": True, "schema": {"type": "integer"}}


def evidence_file(summary: str, mimetype: str, params: list, *, signed: bool = False) -> dict:
    """The OpenAPI operation of an evidence download (`signed`: it needs a tree head)."""
    responses = {
        "200": {"description": "The file", "content": {mimetype: {}}},
        "404": {"description": "No such batch or subject"},
    }
    if signed:
        responses["503"] = {
            "description": "No signing key configured (no_signing_key), or no tree head could "
            "be signed, e.g. the time-stamping authority did not answer (no_tree_head)"
        }
    return op(summary, "auditor", params=params, responses=responses)


PATHS = {
    "/batches/{batch_id}/report.csv": {
        "get": evidence_file("The batch report (one line per row)", "text/csv", [BATCH, MASKED])
    },
    "/batches/{batch_id}/certificate.pdf": {
        "get": evidence_file("The batch's deletion certificate", "application/pdf", [BATCH])
    },
    "/batches/{batch_id}/evidence.zip": {
        "get": evidence_file(
            "The evidence pack: certificate, masked report, the batch's audit entries with "
            "their inclusion proofs, the signed tree head, the public key, a signed manifest "
            "and verify.py",
            "application/zip",
            [BATCH, MASKED],
            signed=True,
        )
    },
    "/subjects/{subject_id}/certificate.pdf": {
        "get": evidence_file("One subject's deletion certificate", "application/pdf", [SUBJECT])
    },
    "/audit/checkpoints": {
        "get": op(
            "Signed checkpoints of the audit chain",
            "auditor",
            params=[
                query("after", "Checkpoints after this seq", {"type": "integer"}),
                query("limit", "At most this many (≤ 1000)", {"type": "integer"}),
            ],
        ),
        "post": op(
            "Sign the chain's head now",
            "auditor",
            responses={
                "201": {"description": "Signed"},
                "409": {"description": "The trail is empty"},
                "503": {"description": "No signing key configured"},
            },
        ),
    },
    "/audit/public-key": {"get": op("The Ed25519 public key (id, hex, PEM)", "auditor")},
    "/deadlines/report.csv": {
        "get": evidence_file("Overdue and at-risk subjects (for the DPO)", "text/csv", [])
    },
}
