"""Evidence over the API: batch reports, certificates, evidence packs, signed checkpoints.

Each route takes its path and query as models (validated by flask-openapi3, written into the
document). `validate_request()` sits under `role_required` and `audited_download`: the role is
checked before the input, and the download is audited with the URL's id, as before the models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Response, current_app, jsonify
from flask_login import current_user
from flask_openapi3 import validate_request
from pydantic import BaseModel, BeforeValidator, Field

from webapp.accounts.access import role_required
from webapp.api.audit_api import HEX64, ROLE, Query, download
from webapp.api.blueprint import api
from webapp.api.schemas import ErrorBody, Id, whole
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
UNAVAILABLE = (
    "No signing key is configured (no_signing_key), or no tree head could be signed, e.g. the "
    "time-stamping authority did not answer (no_tree_head)."
)


# --- request models -------------------------------------------------------------------------


def flag(name: str, default: bool):
    """A yes/no query parameter (1/0, true/false, yes/no); blank is the default."""

    def check(value: Any) -> Any:
        if isinstance(value, str):
            raw = value.strip().lower()
            if not raw:
                return default
            if raw not in FLAGS:
                raise ValueError(f"'{name}' must be 1 or 0, not {raw!r}.")
            return FLAGS[raw]
        return value

    return Annotated[bool, BeforeValidator(check)]


class BatchPath(BaseModel):
    batch_id: Id


class SubjectPath(BaseModel):
    subject_id: Id


class ReportQuery(Query):
    masked: flag("masked", False) = Field(
        False,
        description="1 masks identifiers (a***@b***.com); 0 (the default) shows them while "
        "they are retained. Also true/false, yes/no.",
    )


class PackQuery(Query):
    masked: flag("masked", True) = Field(
        True,
        description="0 shows identifiers in the pack's report while they are retained; 1 (the "
        "default) masks them. Also true/false, yes/no.",
    )


class CheckpointQuery(Query):
    after: whole("after", 0) = Field(0, description="Checkpoints after this seq")
    limit: whole("limit", 1) = Field(
        100, description=f"At most this many (more than {MAX_LIMIT} count as {MAX_LIMIT})"
    )


# --- answer models --------------------------------------------------------------------------


class Checkpoint(BaseModel):
    """A signed statement that the audit chain had head `hash` at `seq` (Ed25519)."""

    id: int
    actor: str = Field(description="Who asked for it (the scheduler signs daily ones)")
    seq: int
    hash: str = Field(pattern=HEX64)
    at: str = Field(description="UTC ISO 8601, the exact text that was signed")
    signature: str = Field(description="Hex of the 64-byte Ed25519 signature")
    key_id: str = Field(pattern=HEX64)
    public_key: str = Field(description="The raw 32-byte public key, hex")


class CheckpointPage(BaseModel):
    checkpoints: list[Checkpoint]
    next_after: int | None = Field(description="Pass as `after` for the next page; null at the end")


class PublicKey(BaseModel):
    algorithm: Literal["Ed25519"]
    key_id: str = Field(pattern=HEX64, description="Hex SHA-256 of the raw public key")
    public_key_hex: str
    public_key_pem: str


# --- routes ---------------------------------------------------------------------------------


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


AUDITED = " Every download is recorded in the audit trail (evidence.downloaded). "


@api.get(
    "/batches/<int:batch_id>/report.csv",
    operation_id="get_batch_report",
    summary="The batch report: one line per row, streamed as CSV",
    description="`masked=1` masks identifiers." + AUDITED + ROLE,
    responses={200: download("text/csv", "The report"), 404: ErrorBody},
)
@role_required(Role.AUDITOR)
@audited_download("report.csv", "batch")
@validate_request()
def batch_report_csv(path: BatchPath, query: ReportQuery):
    """Every row of the batch as CSV, streamed; `masked=1` masks identifiers."""
    try:
        app = current_app._get_current_object()
        chunks = evidence_reports.batch_report(app, path.batch_id, masked=query.masked)
    except ValueError as error:
        return api_error(404 if isinstance(error, BatchNotFound) else 400, str(error))
    filename = evidence_reports.batch_report_filename(path.batch_id, masked=query.masked)
    return exports.download(chunks, filename=filename, mimetype="text/csv")


@api.get(
    "/batches/<int:batch_id>/certificate.pdf",
    operation_id="get_batch_certificate",
    summary="The batch's deletion certificate (PDF)",
    description=AUDITED.strip() + " " + ROLE,
    responses={200: download("application/pdf", "The certificate", binary=True), 404: ErrorBody},
)
@role_required(Role.AUDITOR)
@audited_download("certificate.pdf", "batch")
@validate_request()
def batch_certificate_pdf(path: BatchPath):
    """The batch's deletion certificate (PDF)."""
    try:
        data = certificates.issue_batch_certificate(get_session(), path.batch_id)
    except BatchNotFound as error:
        return api_error(404, str(error))
    return pdf_response(data, f"batch-{path.batch_id}-certificate.pdf")


@api.get(
    "/subjects/<int:subject_id>/certificate.pdf",
    operation_id="get_subject_certificate",
    summary="One subject's deletion certificate (PDF)",
    description=AUDITED.strip() + " " + ROLE,
    responses={200: download("application/pdf", "The certificate", binary=True), 404: ErrorBody},
)
@role_required(Role.AUDITOR)
@audited_download("certificate.pdf", "subject")
@validate_request()
def subject_certificate_pdf(path: SubjectPath):
    """One subject's deletion certificate (PDF)."""
    try:
        data = certificates.issue_subject_certificate(get_session(), path.subject_id)
    except SubjectNotFound as error:
        return api_error(404, str(error))
    return pdf_response(data, f"subject-{path.subject_id}-certificate.pdf")


@api.get(
    "/batches/<int:batch_id>/evidence.zip",
    operation_id="get_batch_evidence",
    summary="The evidence pack of a batch (zip), streamed",
    description="Certificate, masked report, the batch's audit entries with their inclusion "
    "proofs, the signed tree head, the public key, a signed manifest and verify.py "
    "(DESIGN.md). Identifiers in its report are masked unless `masked=0`. 503: "
    + UNAVAILABLE
    + AUDITED
    + ROLE,
    responses={
        200: download("application/zip", "The evidence pack", binary=True),
        404: ErrorBody,
        503: ErrorBody,
    },
)
@role_required(Role.AUDITOR)
@audited_download("evidence.zip", "batch")
@validate_request()
def batch_evidence_zip(path: BatchPath, query: PackQuery):
    """The evidence pack, streamed; identifiers in its report are masked unless `masked=0`."""
    try:
        app = current_app._get_current_object()
        chunks = evidence_pack(app, path.batch_id, masked=query.masked)
    except (signing.SigningKeyError, tree_heads.TreeHeadError) as error:
        return unavailable(error)
    except ValueError as error:
        return api_error(404 if isinstance(error, BatchNotFound) else 400, str(error))
    return exports.download(
        chunks, filename=f"batch-{path.batch_id}-evidence.zip", mimetype="application/zip"
    )


@api.get(
    "/audit/checkpoints",
    operation_id="list_checkpoints",
    summary="Signed checkpoints of the audit chain, in seq order",
    description="`after` (a seq) and `limit` page through them. " + ROLE,
    responses={200: CheckpointPage},
)
@role_required(Role.AUDITOR)
@validate_request()
def checkpoints_list(query: CheckpointQuery):
    """Signed checkpoints in seq order: `after` (seq) and `limit` (≤ 1000) page through them."""
    limit = min(query.limit, MAX_LIMIT)
    rows = checkpoints.page(get_session(), after=query.after, limit=limit)
    items = [{"id": row.id, "actor": row.actor, **checkpoints.checkpoint_dict(row)} for row in rows]
    next_after = items[-1]["seq"] if len(items) == limit else None
    return jsonify(checkpoints=items, next_after=next_after)


@api.post(
    "/audit/checkpoints",
    operation_id="create_checkpoint",
    summary="Sign the chain's head now",
    description="Harmless, so auditors may ask for one. 409 when the trail is empty (nothing "
    "to sign yet); 503 (no_signing_key) when no signing key is configured. "
    + ROLE
    + " Token scope: write.",
    responses={201: Checkpoint, 409: ErrorBody, 503: ErrorBody},
)
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


@api.get(
    "/audit/public-key",
    operation_id="get_public_key",
    summary="The Ed25519 public key that signs checkpoints, tree heads and evidence packs",
    description="503 (no_signing_key) when no signing key is configured. " + ROLE,
    responses={200: PublicKey, 503: ErrorBody},
)
@role_required(Role.AUDITOR)
def public_key():
    """The Ed25519 public key that signs checkpoints and evidence packs."""
    try:
        return jsonify(signing.public_key().as_dict())
    except signing.SigningKeyError as error:
        return unavailable(error)


@api.get(
    "/deadlines/report.csv",
    operation_id="get_deadline_report",
    summary="Overdue and due-within-7-days subjects as CSV, for the DPO",
    description="Fingerprints, no identifiers. " + ROLE,
    responses={200: download("text/csv", "The deadline report")},
)
@role_required(Role.AUDITOR)
def deadline_report_csv():
    """Overdue and due-within-7-days subjects as CSV (fingerprints, no identifiers)."""
    app = current_app._get_current_object()
    return exports.download(
        evidence_reports.deadline_report(app), filename="deadlines.csv", mimetype="text/csv"
    )
