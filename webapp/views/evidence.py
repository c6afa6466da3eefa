"""Evidence downloads (report, certificates, pack), signed checkpoints, the deadline report."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from webapp.accounts.access import role_required
from webapp.db import get_session
from webapp.erasure.batches import BatchNotFound
from webapp.erasure.deadlines import SubjectNotFound
from webapp.evidence import certificates, checkpoints, signing
from webapp.evidence import reports as evidence_reports
from webapp.evidence.downloads import audited_download
from webapp.evidence.pack import evidence_pack
from webapp.forms import ActionForm
from webapp.models import Role
from webapp.trail import exports

bp = Blueprint("evidence", __name__)


def _masked(default: bool) -> bool:
    raw = request.args.get("masked", "").strip().lower()
    return default if not raw else raw in {"1", "true", "yes"}


def _pdf(data: bytes, filename: str) -> Response:
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/batches/<int:batch_id>/report.csv")
@role_required(Role.AUDITOR)
@audited_download("report.csv", "batch")
def batch_report(batch_id: int):
    """The batch report: one line per row (masked=1 masks identifiers)."""
    app = current_app._get_current_object()
    try:
        chunks = evidence_reports.batch_report(app, batch_id, masked=_masked(False))
    except BatchNotFound as error:
        abort(404, str(error))
    return exports.download(chunks, filename=f"batch-{batch_id}-report.csv", mimetype="text/csv")


@bp.get("/batches/<int:batch_id>/certificate.pdf")
@role_required(Role.AUDITOR)
@audited_download("certificate.pdf", "batch")
def batch_certificate(batch_id: int):
    """The batch's deletion certificate."""
    try:
        data = certificates.issue_batch_certificate(get_session(), batch_id)
    except BatchNotFound as error:
        abort(404, str(error))
    return _pdf(data, f"batch-{batch_id}-certificate.pdf")


@bp.get("/subjects/<int:subject_id>/certificate.pdf")
@role_required(Role.AUDITOR)
@audited_download("certificate.pdf", "subject")
def subject_certificate(subject_id: int):
    """One subject's deletion certificate."""
    try:
        data = certificates.issue_subject_certificate(get_session(), subject_id)
    except SubjectNotFound as error:
        abort(404, str(error))
    return _pdf(data, f"subject-{subject_id}-certificate.pdf")


@bp.get("/batches/<int:batch_id>/evidence.zip")
@role_required(Role.AUDITOR)
@audited_download("evidence.zip", "batch")
def batch_pack(batch_id: int):
    """The evidence pack (identifiers in its report masked unless masked=0)."""
    app = current_app._get_current_object()
    try:
        chunks = evidence_pack(app, batch_id, masked=_masked(True))
    except BatchNotFound as error:
        abort(404, str(error))
    except signing.SigningKeyError as error:
        flash(f"No evidence pack: {error}", "error")
        return redirect(url_for("batches.detail", batch_id=batch_id))
    return exports.download(
        chunks, filename=f"batch-{batch_id}-evidence.zip", mimetype="application/zip"
    )


@bp.get("/audit/checkpoints")
@role_required(Role.AUDITOR)
def checkpoint_list():
    """Signed checkpoints, whether they still hold, and the public key."""
    view = checkpoints.overview(get_session())
    return render_template("evidence/checkpoints.html", view=view, action=ActionForm())


@bp.post("/audit/checkpoints")
@role_required(Role.AUDITOR)
def checkpoint_sign():
    """Sign the chain's head now."""
    if ActionForm().validate_on_submit():
        try:
            row = checkpoints.sign_checkpoint(get_session(), actor=current_user.email)
        except (signing.SigningKeyError, checkpoints.CheckpointError) as error:
            flash(str(error), "error")
        else:
            flash(f"Checkpoint signed: the chain's head at seq {row.seq}.", "success")
    return redirect(url_for("evidence.checkpoint_list"))


@bp.get("/audit/public-key.pem")
@role_required(Role.AUDITOR)
def public_key_pem():
    """The public key, as a PEM file."""
    try:
        pem = signing.public_key().pem
    except signing.SigningKeyError as error:
        abort(503, str(error))
    response = Response(pem, mimetype="application/x-pem-file")
    response.headers["Content-Disposition"] = 'attachment; filename="deletion-desk-public-key.pem"'
    return response


@bp.get("/deadlines/report.csv")
@role_required(Role.AUDITOR)
def deadline_report():
    """Overdue and due-within-7-days subjects, for the DPO (fingerprints, no identifiers)."""
    app = current_app._get_current_object()
    return exports.download(
        evidence_reports.deadline_report(app), filename="deadlines.csv", mimetype="text/csv"
    )
