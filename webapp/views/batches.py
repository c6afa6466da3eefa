"""Batch pages: list, upload, the batch (preview, approval, progress) and its workflow buttons."""

from __future__ import annotations

import unicodedata

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup, escape
from wtforms.fields.choices import SelectChoice

from webapp import tool_policy
from webapp.accounts.access import role_required
from webapp.db import get_session
from webapp.environments import list_environments
from webapp.erasure import batches as service
from webapp.erasure import deadlines
from webapp.erasure import pages as batch_pages
from webapp.erasure import queries as batch_queries
from webapp.forms import ActionForm
from webapp.models import BatchState, Role
from webapp.trail import exports
from webapp.views.batch_forms import (
    ApproveForm,
    BatchFilterForm,
    CancelForm,
    RejectForm,
    RowFindForm,
    UploadForm,
)

bp = Blueprint("batches", __name__)

BADGES = {
    "complete": "badge-ok",
    "valid": "badge-ok",
    "failed": "badge-bad",
    "malformed": "badge-bad",
    "waiting_retry": "badge-warn",
    "duplicate": "badge-warn",
    "already_requested": "badge-warn",
    "excluded": "badge-warn",
    "overdue": "badge-bad",
    "due_soon": "badge-warn",
    "on_track": "badge-ok",
    "awaiting_approval": "badge-info",
    "approved": "badge-info",
    "submitting": "badge-info",
    "polling": "badge-info",
    "submitted": "badge-info",
    "accepted": "badge-info",
    "sending": "badge-info",
}


@bp.app_template_filter("badge")
def badge_class(value: str | None) -> str:
    """The badge colour of a state, classification or urgency."""
    return BADGES.get(value or "", "")


@bp.app_template_filter("label")
def label(value: str | None) -> str:
    """A state or classification in words."""
    return service.state_label(value or "")


@bp.app_template_filter("visible")
def visible(text: str) -> Markup:
    """An identifier as uploaded, its invisible characters shown: `alice⟨U+200B⟩@…`.

    Zero-width characters and bidi overrides (Unicode Cf and Cc) would otherwise make a
    malformed look-alike read exactly like the real identity, or reorder what follows it.
    """
    if text.isascii() and text.isprintable():
        return escape(text)
    parts = []
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf"):
            name = unicodedata.name(char, "control character")
            parts.append(
                Markup('<mark class="hidden-char" title="{}">U+{:04X}</mark>').format(
                    name, ord(char)
                )
            )
        else:
            parts.append(escape(char))
    return Markup("").join(parts)


@bp.app_context_processor
def deadline_helpers() -> dict:
    return {"days_left": deadlines.days_left, "urgency": deadlines.urgency}


def _int_arg(name: str) -> int:
    return max(1, request.args.get(name, 1, type=int) or 1)


@bp.get("/batches")
@role_required(Role.AUDITOR)
def index():
    """Every batch, newest first, filtered by reference, file name, uploader, state,
    environment and upload dates (none of them personal data, so a GET form)."""
    db = get_session()
    form = BatchFilterForm(request.args)
    envs = list_environments(db)
    form.environment_id.choices = [("", "Any environment")] + [(str(e.id), e.name) for e in envs]
    form.uploaded_by.choices = [("", "Anyone")] + [
        (str(user_id), email) for user_id, email in batch_queries.uploaders(db)
    ]
    form.validate()
    page = batch_queries.list_batches(db, filters=form.filters(), page=_int_arg("page"))
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    status = 400 if form.errors else 200
    return render_template("batches/index.html", form=form, page=page, args=args), status


def _upload_environments(form: UploadForm) -> list:
    """Main Production environments; one whose tool policy switches deletion off is listed
    disabled, with the reason (a stale form posting it gets the policy's refusal)."""
    db = get_session()
    envs = [e for e in list_environments(db) if e.main_production]
    offered = tool_policy.operations_offered(db, envs)
    form.environment_id.choices = [
        SelectChoice(e.id, e.name)
        if "deletion" in offered[e.id]
        else SelectChoice(
            e.id, f"{e.name} (deletion switched off by its tool policy)", {"disabled": True}
        )
        for e in envs
    ]
    form.deletion_offered = any("deletion" in ops for ops in offered.values())
    return envs


def _stored(batch_id: int, ignored: list[str]) -> str:
    """What the officer reads after an upload, naming any column the desk did not use."""
    message = (
        f"Batch {batch_id} is validated and stored. Nothing is sent yet: another "
        "officer or admin must approve it."
    )
    if ignored:
        message += " Ignored column(s): " + ", ".join(f"“{name}”" for name in ignored) + "."
    return message


@bp.route("/batches/new", methods=["GET", "POST"])
@role_required(Role.OFFICER)
def upload():
    """Upload a CSV file or paste a list; it is validated at once and waits for approval."""
    form = UploadForm()
    envs = _upload_environments(form)
    if form.validate_on_submit():
        pasted = form.pasted.data if (form.pasted.data or "").strip() else None
        file = form.file.data if pasted is None else None
        try:
            batch, read = service.create_batch(
                get_session(),
                actor=current_user.email,
                environment_id=form.environment_id.data,
                # MAX_CONTENT_LENGTH bounds the read; the service names the size if it is too big.
                data=file.read() if file else None,
                pasted=pasted,
                paste_kind=form.paste_kind.data,
                filename=file.filename if file else None,
                received_on=form.received_on.data,
                reference=form.reference.data,
            )
        except service.BatchError as error:
            flash(f"Nothing was stored. {error}", "error")
        else:
            flash(_stored(batch.id, read.ignored_columns), "success")
            return redirect(url_for("batches.detail", batch_id=batch.id))
    status = 400 if request.method == "POST" else 200
    return render_template("batches/new.html", form=form, environments=envs), status


@bp.route("/batches/<int:batch_id>", methods=["GET", "POST"])
@role_required(Role.AUDITOR)
def detail(batch_id: int):
    """The batch: preview and approval while it waits, then Heap's progress and its rows.

    Find is POSTed (CSRF): the identifier searched for stays out of URLs, so out of browser
    history and proxy logs; the answer is rendered from the POST, never redirected to.
    """
    find = RowFindForm()
    if request.method == "POST" and not find.validate_on_submit():
        abort(400, " ".join(error for errors in find.errors.values() for error in errors))
    try:
        view = batch_pages.batch_page(
            get_session(),
            batch_id,
            page=_int_arg("page"),
            problems_page=_int_arg("ppage"),
            search=find.q.data if request.method == "POST" else "",
        )
    except service.BatchNotFound:
        abort(404, f"There is no batch {batch_id}.")
    batch = view.detail.batch
    refusal = None
    if batch.state == BatchState.AWAITING_APPROVAL and current_user.can(Role.OFFICER):
        refusal = service.approval_refusal_for(get_session(), user_id=current_user.id, batch=batch)
    return render_template(
        "batches/detail.html",
        view=view,
        batch=batch,
        reject_form=RejectForm(),
        cancel_form=CancelForm(),
        may_cancel=_may_cancel(batch),
        four_eyes_refusal=refusal,
        action=ActionForm(),
        find_form=find,
    )


def _may_cancel(batch) -> bool:
    """Whether the page offers Cancel: the uploader or an admin; once approved, an admin only."""
    if current_user.can(Role.ADMIN):
        return batch.state in {s.value for s in service.CANCELLABLE}
    own = batch.uploaded_by == current_user.id and current_user.can(Role.OFFICER)
    return own and batch.state == BatchState.AWAITING_APPROVAL


@bp.get("/batches/<int:batch_id>/problems.csv")
@role_required(Role.AUDITOR)
def problems_csv(batch_id: int):
    """The batch's problem rows as CSV."""
    try:
        service.get_batch(get_session(), batch_id)
    except service.BatchNotFound:
        abort(404, f"There is no batch {batch_id}.")
    app = current_app._get_current_object()
    return exports.download(
        batch_pages.problems_csv(app, batch_id),
        filename=f"batch-{batch_id}-problems.csv",
        mimetype="text/csv",
    )


def _act(batch_id: int, form, step, done: str):
    """Run one workflow step from a POSTed form, then go back to the batch page."""
    if not form.validate_on_submit():
        for errors in form.errors.values():
            flash(" ".join(errors), "error")
        return redirect(url_for("batches.detail", batch_id=batch_id))
    try:
        step(get_session())
    except service.BatchNotFound:
        abort(404, f"There is no batch {batch_id}.")
    except service.BatchError as error:
        flash(str(error), "error")
    else:
        flash(done, "success")
    return redirect(url_for("batches.detail", batch_id=batch_id))


@bp.post("/batches/<int:batch_id>/approve")
@role_required(Role.OFFICER)
def approve(batch_id: int):
    """Four-eyes approval: queues the batch for submission to Heap."""
    form = ApproveForm()
    return _act(
        batch_id,
        form,
        lambda db: service.approve(
            db,
            actor=current_user.email,
            batch_id=batch_id,
            sha256=form.sha256.data or None,
            manifest_sha256=form.manifest_sha256.data or None,
            checked_preview=form.checked_preview.data,
        ),
        f"Batch {batch_id} approved. It is queued: the desk sends it to Heap in the background.",
    )


@bp.post("/batches/<int:batch_id>/reject")
@role_required(Role.OFFICER)
def reject(batch_id: int):
    """Reject the batch with a reason; nothing is sent."""
    form = RejectForm()
    return _act(
        batch_id,
        form,
        lambda db: service.reject(
            db, actor=current_user.email, batch_id=batch_id, reason=form.reason.data
        ),
        f"Batch {batch_id} rejected. Nothing was sent to Heap.",
    )


@bp.post("/batches/<int:batch_id>/cancel")
@role_required(Role.OFFICER)
def cancel(batch_id: int):
    """Withdraw the batch before submission, with a reason."""
    form = CancelForm()
    return _act(
        batch_id,
        form,
        lambda db: service.cancel(
            db, actor=current_user.email, batch_id=batch_id, reason=form.reason.data
        ),
        f"Batch {batch_id} cancelled. Nothing was sent to Heap.",
    )


@bp.post("/batches/<int:batch_id>/retry")
@role_required(Role.OFFICER)
def retry(batch_id: int):
    """Send a failed or waiting batch again now."""
    return _act(
        batch_id,
        ActionForm(),
        lambda db: service.retry(db, actor=current_user.email, batch_id=batch_id),
        f"Batch {batch_id} is queued to be sent again.",
    )
