"""Before approval: the uploader fixes rows, the approver confirms what the approval covers.

Issue 15. Row fixes are per-row forms on the batch page (plain `<details>`, no script); the
approval is a page of its own that repeats the counts and the manifest SHA-256 and posts the
hash it showed to `batches.approve`, which refuses any other.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from webapp.accounts.access import role_required
from webapp.db import get_session
from webapp.erasure import batches as service
from webapp.erasure import row_fixes
from webapp.models import BatchState, Role
from webapp.views.batch_forms import ApproveForm, CorrectRowForm, ExcludeRowForm

bp = Blueprint("batch_review", __name__)


@bp.get("/batches/<int:batch_id>/approve")
@role_required(Role.OFFICER)
def confirm_approval(batch_id: int):
    """The confirmation: counts and manifest SHA-256 to compare, then the approval itself."""
    db = get_session()
    try:
        batch = service.get_batch(db, batch_id)
    except service.BatchNotFound:
        abort(404, f"There is no batch {batch_id}.")
    if batch.state != BatchState.AWAITING_APPROVAL:
        flash(f"Batch {batch_id} is {service.state_label(batch.state)}: nothing to approve.")
        return redirect(url_for("batches.detail", batch_id=batch_id))
    return render_template(
        "batches/approve.html",
        batch=batch,
        counts=row_fixes.counts(batch),
        form=ApproveForm(sha256=batch.file_sha256, manifest_sha256=batch.manifest_sha256),
        needs_tick=batch.manifest_count > service.CHECKED_PREVIEW_ABOVE,
        four_eyes_refusal=service.approval_refusal_for(db, user_id=current_user.id, batch=batch),
    )


def _fixed(fix: row_fixes.RowFix, verb: str) -> str:
    """What the officer reads after a fix."""
    message = f"Row {fix.row_number} {verb}: "
    if fix.classification == "valid":
        message += "it will be sent once the batch is approved."
    elif fix.classification == "excluded":
        message += "it will not be sent."
    else:
        message += f"{fix.problem}, so it will not be sent."
    if fix.manifest_changed:
        message += " The manifest changed: the approval must cover the new one."
    return message


def _fix(batch_id: int, row_number: int, form, step, verb: str):
    """Run one row fix from a POSTed form, then go back to the row on the batch page."""
    back = url_for("batches.detail", batch_id=batch_id, _anchor=f"row-{row_number}")
    if not form.validate_on_submit():
        for errors in form.errors.values():
            flash(" ".join(errors), "error")
        return redirect(back)
    try:
        fix = step(get_session())
    except service.BatchNotFound as error:
        abort(404, str(error))
    except service.BatchError as error:
        flash(str(error), "error")
    else:
        flash(_fixed(fix, verb), "success")
    return redirect(back)


@bp.post("/batches/<int:batch_id>/rows/<int:row_number>/exclude")
@role_required(Role.OFFICER)
def exclude_row(batch_id: int, row_number: int):
    """Take a valid row out of a batch awaiting approval, with a reason."""
    form = ExcludeRowForm()
    return _fix(
        batch_id,
        row_number,
        form,
        lambda db: row_fixes.exclude_row(
            db,
            actor=current_user.email,
            batch_id=batch_id,
            row_number=row_number,
            reason=form.reason.data,
        ),
        "excluded",
    )


@bp.post("/batches/<int:batch_id>/rows/<int:row_number>/correct")
@role_required(Role.OFFICER)
def correct_row(batch_id: int, row_number: int):
    """Correct a malformed row's identifier in a batch awaiting approval."""
    form = CorrectRowForm()
    return _fix(
        batch_id,
        row_number,
        form,
        lambda db: row_fixes.correct_row(
            db,
            actor=current_user.email,
            batch_id=batch_id,
            row_number=row_number,
            kind=form.kind.data,
            value=form.value.data,
        ),
        "corrected",
    )
