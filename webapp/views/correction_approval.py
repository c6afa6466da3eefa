"""Four-eyes for corrections on the pages: approve, reject (or, its author: withdraw)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, flash, redirect, url_for
from flask_login import current_user

from webapp.accounts.access import role_required
from webapp.corrections import approval, service
from webapp.corrections.plans import CorrectionInputError
from webapp.db import get_session
from webapp.forms import ActionForm
from webapp.models import Correction, CorrectionState, Role
from webapp.views.corrections_forms import RejectCorrectionForm

bp = Blueprint("correction_approval", __name__)


@dataclass(frozen=True)
class Decision:
    """What the detail page offers an officer on a correction awaiting approval."""

    is_author: bool
    refusal: str | None  # why this account may not approve (four-eyes across accounts)
    approve_form: ActionForm
    reject_form: RejectCorrectionForm


def decision_for(correction: Correction) -> Decision | None:
    """For an officer looking at a correction awaiting approval; None otherwise."""
    if correction.state != CorrectionState.AWAITING_APPROVAL or not current_user.can(Role.OFFICER):
        return None
    refusal = approval.approval_refusal_for(
        get_session(), user_id=current_user.id, correction=correction
    )
    return Decision(
        is_author=approval.is_author(current_user, correction),
        refusal=refusal,
        approve_form=ActionForm(),
        reject_form=RejectCorrectionForm(),
    )


def _decide(correction_id: int, form, step) -> object:
    """Run one decision from a POSTed form, then go back to the correction's page."""
    back = redirect(url_for("corrections.detail", correction_id=correction_id))
    if not form.validate_on_submit():
        for errors in form.errors.values():
            flash(" ".join(errors), "error")
        return back
    try:
        correction = step(get_session())
    except service.CorrectionNotFound:
        abort(404)
    except CorrectionInputError as error:
        flash(str(error), "error")
        return back
    flash(*_outcome(correction))
    return back


def _outcome(correction: Correction) -> tuple[str, str]:
    if correction.state == CorrectionState.REJECTED:
        done = "withdrawn" if correction.decided_by == correction.actor else "rejected"
        return f"Correction #{correction.id} {done}. Nothing was sent to Heap.", "success"
    if correction.state == CorrectionState.SUCCEEDED:
        return f"Correction #{correction.id} approved and sent: Heap accepted it.", "success"
    return (
        f"Correction #{correction.id} approved, but Heap did not accept every call "
        f"({correction.heap_message}). Retry it from this page.",
        "error",
    )


@bp.post("/corrections/<int:correction_id>/approve")
@role_required(Role.OFFICER)
def approve(correction_id: int):
    """Approve a correction awaiting approval: exactly its stored calls are sent to Heap."""
    return _decide(
        correction_id,
        ActionForm(),
        lambda db: approval.approve(db, actor=current_user.email, correction_id=correction_id),
    )


@bp.post("/corrections/<int:correction_id>/reject")
@role_required(Role.OFFICER)
def reject(correction_id: int):
    """Reject (or withdraw one's own) correction awaiting approval, with a reason."""
    form = RejectCorrectionForm()
    return _decide(
        correction_id,
        form,
        lambda db: approval.reject(
            db, actor=current_user.email, correction_id=correction_id, reason=form.reason.data
        ),
    )
