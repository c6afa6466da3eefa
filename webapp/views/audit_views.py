"""The audit trail page: filter, page through, verify, export."""

from __future__ import annotations

import json
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
PAGE_SIZES = (25, 50, 100, 200)
PAGE_SIZE = PAGE_SIZES[0]
# Detail lines shown in the row; the rest (and the JSON) one click away.
SHOWN_DETAILS = 4


def detail_lines(details: dict, prefix: str = "") -> list[tuple[str, str]]:
    """An entry's details as readable "key: value" lines, nested keys joined with dots."""
    lines: list[tuple[str, str]] = []
    for key in sorted(details):
        value, name = details[key], f"{prefix}{key}"
        if isinstance(value, dict) and value:
            lines += detail_lines(value, f"{name}.")
        elif isinstance(value, list):
            shown = ", ".join(
                str(v) if not isinstance(v, dict | list) else json.dumps(v) for v in value
            )
            lines.append((name, shown or "(none)"))
        elif value is None:
            lines.append((name, "—"))
        elif isinstance(value, bool):
            lines.append((name, "yes" if value else "no"))
        else:
            lines.append((name, str(value) if value != {} else "(none)"))
    return lines


@bp.app_template_filter("detail_lines")
def _detail_lines_filter(details: dict) -> list[tuple[str, str]]:
    return detail_lines(details or {})


def _choices(session, column: str, current: str | None) -> list[str]:
    values = audit.distinct_values(session, column)
    if current and current not in values:
        values = sorted([*values, current])
    return values


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
    per_page = page_number("per_page", PAGE_SIZE, minimum=1, maximum=PAGE_SIZES[-1])
    session = get_session()
    query = audit.filtered(select(AuditEntry), **filters)
    if before:
        query = query.where(AuditEntry.seq < before)
    rows = session.exec(query.order_by(AuditEntry.seq.desc()).limit(per_page + 1)).all()
    more = len(rows) > per_page
    rows = rows[:per_page]
    args = {k: v for k, v in request.args.items() if k != "before" and v}
    export_args = {k: v for k, v in args.items() if k != "per_page"}
    next_url = url_for("audit.index", **args, before=rows[-1].seq) if more and rows else None
    entries = [audit.entry_dict(row) for row in rows]
    return render_template(
        "audit/index.html",
        form=form,
        entries=entries,
        next_url=next_url,
        first_url=url_for("audit.index", **args) if before else None,
        action=ActionForm(),
        export_args=export_args,
        actors=_choices(session, "actor", filters.get("actor")),
        actions=_choices(session, "action", filters.get("action")),
        target_types=_choices(session, "target_type", filters.get("target_type")),
        per_page=per_page,
        page_sizes=sorted({*PAGE_SIZES, per_page}),
        shown_details=SHOWN_DETAILS,
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
