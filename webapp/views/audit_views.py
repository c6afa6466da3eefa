"""The audit trail page: filter, page through, verify, export."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlmodel import select

from webapp.accounts.access import role_required
from webapp.db import get_session, session_scope
from webapp.evidence import checkpoints, tree_heads
from webapp.forms import ActionForm, AuditFilterForm, page_number
from webapp.models import AuditEntry, Role
from webapp.trail import audit, exports

bp = Blueprint("audit", __name__)
PAGE_SIZE = 50


def filters_from(form: AuditFilterForm) -> dict:
    """Turn the filter form into audit.filtered() keyword arguments."""
    since = datetime.combine(form.since.data, time.min, UTC) if form.since.data else None
    until = (
        datetime.combine(form.until.data + timedelta(days=1), time.min, UTC)
        if form.until.data
        else None
    )
    return {
        "actor": (form.actor.data or "").strip() or None,
        "action": (form.action.data or "").strip() or None,
        "target_type": (form.target_type.data or "").strip() or None,
        "target_id": (form.target_id.data or "").strip() or None,
        "since": since,
        "until": until,
    }


@bp.get("/audit")
@role_required(Role.AUDITOR)
def index():
    """Newest entries first, 50 a page, keyset-paginated so it stays fast at a million."""
    form = AuditFilterForm(request.args)
    filters = filters_from(form) if form.validate() else {}
    before = page_number("before", minimum=1)
    query = audit.filtered(select(AuditEntry), **filters)
    if before:
        query = query.where(AuditEntry.seq < before)
    rows = get_session().exec(query.order_by(AuditEntry.seq.desc()).limit(PAGE_SIZE + 1)).all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    args = {k: v for k, v in request.args.items() if k != "before" and v}
    next_url = url_for("audit.index", **args, before=rows[-1].seq) if more and rows else None
    entries = [audit.entry_dict(row) for row in rows]
    return render_template(
        "audit/index.html",
        form=form,
        entries=entries,
        next_url=next_url,
        first_url=url_for("audit.index", **args) if before else None,
        action=ActionForm(),
        export_args=args,
    )


@bp.post("/audit/verify")
@role_required(Role.AUDITOR)
def verify():
    """Recompute the whole chain now and say what was found."""
    if not ActionForm().validate_on_submit():
        return redirect(url_for("audit.index"))
    with session_scope(write=False) as session:
        result = audit.verify(session)
        signed = checkpoints.verify_checkpoints(session)
        heads = tree_heads.verify_heads(session)
    current_app.logger.info("audit verification by user %s: ok=%s", current_user.id, result.ok)
    if result.ok:
        head = result.head[:16]
        flash(f"The audit trail verifies: {result.entries} entries, head {head}…", "success")
    else:
        problem = f"{result.problem} (first bad seq {result.first_bad_seq})"
        flash(f"The audit trail does NOT verify: {problem}.", "error")
    if signed.checkpoints and signed.ok:
        flash(
            f"{signed.checkpoints} signed checkpoint(s) verify and the chain extends each.",
            "success",
        )
    for problem in signed.problems:
        flash(f"Signed checkpoint problem: {problem}", "error")
    if heads.heads and heads.ok:
        flash(
            f"{heads.heads} signed tree head(s) verify: the entries still give every signed root.",
            "success",
        )
    for problem in heads.problems:
        flash(f"Signed tree head problem: {problem}", "error")
    return redirect(url_for("audit.index"))


@bp.get("/audit/export.<fmt>")
@role_required(Role.AUDITOR)
def export(fmt: str):
    """Download the trail (filtered like the page) as JSONL or CSV, streamed."""
    form = AuditFilterForm(request.args)
    filters = filters_from(form) if form.validate() else {}
    app = current_app._get_current_object()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if fmt == "jsonl":
        return exports.download(
            exports.audit_jsonl(app, **filters),
            filename=f"audit-{stamp}.jsonl",
            mimetype="application/x-ndjson",
        )
    if fmt == "csv":
        return exports.download(
            exports.audit_csv(app, **filters), filename=f"audit-{stamp}.csv", mimetype="text/csv"
        )
    return render_template("errors/404.html", status=404, message="Unknown format."), 404
