"""Subject pages: lookup by identifier (“was X deleted?”), one subject, its receipt, deadline
extension."""

from __future__ import annotations

from flask import (
    Blueprint,
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
from webapp.environments import list_environments
from webapp.erasure import deadlines, lookup
from webapp.erasure.queries import identifier
from webapp.evidence import signing, tree_heads
from webapp.evidence.downloads import audited_download
from webapp.evidence.receipt import subject_receipt
from webapp.models import Role
from webapp.trail import exports
from webapp.views.batch_forms import ExtendForm, LookupForm

bp = Blueprint("subjects", __name__)


@bp.get("/lookup", endpoint="lookup")
@role_required(Role.AUDITOR)
def lookup_page():
    """Find every batch that held a person, by identity or user_id (fingerprints only)."""
    db = get_session()
    form = LookupForm(request.args)
    form.environment_id.choices = [("", "All environments")] + [
        (str(e.id), e.name) for e in list_environments(db)
    ]
    hits, searched = None, "value" in request.args
    if searched and form.validate():
        env = form.environment_id.data
        try:
            hits = lookup.lookup(
                db,
                kind=form.kind.data,
                value=form.value.data,
                environment_id=int(env) if (env or "").isdigit() else None,
                actor=current_user.email,
            )
        except lookup.LookupRefused as error:
            form.value.errors.append(str(error))
    status = 400 if searched and form.errors else 200
    return render_template("subjects/lookup.html", form=form, hits=hits), status


@bp.get("/subjects/<int:subject_id>")
@role_required(Role.AUDITOR)
def detail(subject_id: int):
    """One subject: its batch, Heap request, deadline and extension."""
    hit = lookup.subject_record(get_session(), subject_id)
    if hit is None:
        abort(404, f"There is no subject {subject_id}.")
    return render_template(
        "subjects/detail.html",
        hit=hit,
        value=identifier(hit.subject),
        form=ExtendForm(),
        first_due=deadlines.due_on(hit.subject.received_on),
        late_on=deadlines.extended_late_on(
            hit.subject.received_on, hit.subject.extension_recorded_on
        ),
    )


@bp.get("/subjects/<int:subject_id>/receipt.zip")
@role_required(Role.AUDITOR)
@audited_download("receipt.zip", "subject")
def receipt(subject_id: int):
    """The subject's receipt: the proof, for the person, that the deletion was done."""
    try:
        chunks = subject_receipt(current_app._get_current_object(), subject_id)
    except deadlines.SubjectNotFound as error:
        abort(404, str(error))
    except (signing.SigningKeyError, tree_heads.TreeHeadError) as error:
        abort(503, f"No receipt: {error}")
    return exports.download(
        chunks, filename=f"subject-{subject_id}-receipt.zip", mimetype="application/zip"
    )


@bp.post("/subjects/<int:subject_id>/extend")
@role_required(Role.OFFICER)
def extend(subject_id: int):
    """Extend the subject's deadline by 1 or 2 months (Art. 12(3))."""
    form = ExtendForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            flash(" ".join(errors), "error")
        return redirect(url_for("subjects.detail", subject_id=subject_id))
    try:
        subject = deadlines.extend(
            get_session(),
            actor=current_user.email,
            subject_id=subject_id,
            months=form.months.data,
            reason=form.reason.data,
            subject_informed_on=form.subject_informed_on.data,
        )
    except deadlines.SubjectNotFound:
        abort(404, f"There is no subject {subject_id}.")
    except deadlines.DeadlineError as error:
        flash(str(error), "error")
    else:
        flash(f"Deadline extended to {subject.due_on.isoformat()}.", "success")
    return redirect(url_for("subjects.detail", subject_id=subject_id))
