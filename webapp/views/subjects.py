"""Subject pages: lookup by identifier (“was X deleted?”), of one person or a list, one subject,
its receipt, deadline extension."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user

from webapp.accounts.access import role_required
from webapp.db import get_session
from webapp.environments import list_environments
from webapp.erasure import bulk_lookup, deadlines, lookup
from webapp.erasure.queries import identifier
from webapp.evidence import signing, tree_heads
from webapp.evidence.downloads import audited_download
from webapp.evidence.receipt import subject_receipt
from webapp.models import Role
from webapp.trail import exports
from webapp.views.batch_forms import BulkLookupForm, ExtendForm, LookupForm

bp = Blueprint("subjects", __name__)


def _environment_choices(form) -> None:
    form.environment_id.choices = [("", "All environments")] + [
        (str(e.id), e.name) for e in list_environments(get_session())
    ]


def _environment_id(form) -> int | None:
    env = form.environment_id.data  # one offered in the select: never a huge or unknown id
    return int(env) if (env or "").isdigit() else None


@bp.route("/lookup", methods=["GET", "POST"], endpoint="lookup")
@role_required(Role.AUDITOR)
def lookup_page():
    """Find every batch that held a person, by identity or user_id (fingerprints only).

    POSTed (CSRF) and answered from the POST, never by a redirect: the identifier stays out of
    every URL, so out of browser history and proxy logs.
    """
    form = LookupForm()
    _environment_choices(form)
    hits = None
    if form.validate_on_submit():
        try:
            hits = lookup.lookup(
                get_session(),
                kind=form.kind.data,
                value=form.value.data,
                environment_id=_environment_id(form),
                actor=current_user.email,
            )
        except lookup.LookupRefused as error:
            form.value.errors.append(str(error))
    status = 400 if form.errors else 200
    return render_template("subjects/lookup.html", form=form, hits=hits), status


@bp.route("/lookup/bulk", methods=["GET", "POST"])
@role_required(Role.AUDITOR)
def bulk_lookup_page():
    """Which of these people were deleted? Up to 10,000, pasted or in a CSV file; POSTed, and
    the answer (page or CSV) comes from the POST, so no identifier is ever in a URL."""
    form = BulkLookupForm()
    _environment_choices(form)
    result = entries = None
    if form.validate_on_submit():
        try:
            if form.file.data and form.file.data.filename:
                limit = current_app.config["DESK_UPLOAD_MAX_BYTES"]
                entries = bulk_lookup.read_file(form.file.data.read(), max_bytes=limit)
            else:
                entries = bulk_lookup.read_pasted(form.pasted.data, form.kind.data)
            result = bulk_lookup.answer(
                get_session(),
                entries,
                environment_id=_environment_id(form),
                actor=current_user.email,
                download=form.download.data,
            )
        except bulk_lookup.BulkLookupRefused as error:
            form.pasted.errors.append(str(error))
        else:
            if form.download.data:
                return exports.download(
                    bulk_lookup.answer_csv(result), filename="lookup.csv", mimetype="text/csv"
                )
    status = 400 if form.errors else 200
    # The list rides along in the download form's body (hidden), never in its URL.
    again = bulk_lookup.as_text(entries) if result else None
    return render_template("subjects/bulk.html", form=form, result=result, again=again), status


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
