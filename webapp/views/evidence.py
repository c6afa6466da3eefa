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
from webapp.db import close_session, get_session
from webapp.erasure.batches import BatchNotFound
from webapp.erasure.deadlines import SubjectNotFound
from webapp.evidence import certificates, checkpoints, signing, tree_heads, witness
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
    app, masked = current_app._get_current_object(), _masked(False)
    try:
        chunks = evidence_reports.batch_report(app, batch_id, masked=masked)
    except BatchNotFound as error:
        abort(404, str(error))
    filename = evidence_reports.batch_report_filename(batch_id, masked=masked)
    return exports.download(chunks, filename=filename, mimetype="text/csv")


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
    """Signed checkpoints and tree heads, whether they still hold, the key, how to witness."""
    page = witness.checkpoints_page(get_session())
    return render_template(
        "evidence/checkpoints.html",
        view=page.checkpoints,
        heads=page.heads,
        heads_total=page.heads_total,
        action=ActionForm(),
    )


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


@bp.post("/audit/tree-heads")
@role_required(Role.OFFICER)
def tree_head_sign():
    """Sign a tree head now, if the trail grew since the last one."""
    if ActionForm().validate_on_submit():
        # Signing works in short transactions of its own, none held across the time-stamping
        # authority's answer; the request's write session would hold SQLite's lock meanwhile.
        close_session()
        try:
            signed = witness.sign_tree_head(current_app._get_current_object())
        except tree_heads.TreeHeadError as error:
            flash(str(error), "error")
        else:
            flash(*_signed_head_message(signed))
    return redirect(url_for("evidence.checkpoint_list"))


def _signed_head_message(signed: witness.SignedHead) -> tuple[str, str]:
    head = signed.head
    if head is None:
        return "The audit trail is empty: there is no tree to sign yet.", "info"
    if not signed.new:
        return (
            f"The newest tree head already covers all {head.tree_size:,} entries: "
            "nothing new to sign.",
            "info",
        )
    return f"Tree head signed: {head.tree_size:,} entries, root {head.root_hash[:16]}…", "success"


@bp.get("/audit/witness.py")
@role_required(Role.AUDITOR)
def witness_script():
    """The standalone witness script, with this desk's public key pinned in it."""
    try:
        text = witness.script_text()
    except signing.SigningKeyError as error:
        abort(503, str(error))
    response = Response(text, mimetype="text/x-python")
    response.headers["Content-Disposition"] = 'attachment; filename="witness.py"'
    return response


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
