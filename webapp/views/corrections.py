"""Corrections pages: a two-step form per Heap write (Preview, then Send), history and detail."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

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

from webapp import tool_policy
from webapp.accounts.access import role_required
from webapp.corrections import approval, service
from webapp.corrections.bulk import BulkInputError, parse
from webapp.corrections.plans import CorrectionInputError
from webapp.db import get_session
from webapp.environments import list_environments
from webapp.forms import ActionForm
from webapp.models import MAX_ID, Environment, Role
from webapp.views import corrections_forms as forms
from webapp.views.correction_approval import decision_for

bp = Blueprint("corrections", __name__)
PAGE_SIZE = 50
# Fields the preview page asks for itself instead of carrying them hidden.
NOT_CARRIED = {"csrf_token", "step", "override_reason", "confirm_warnings", "file"}


@dataclass(frozen=True)
class Page:
    """One correction form: its URL name, service family, form and template."""

    name: str
    family: str
    form: type[forms.CorrectionForm]
    template: str
    title: str
    bulk: str | None = None  # corrections_bulk kind, for file forms


PAGES = {
    page.name: page
    for page in (
        Page("identify", "identify", forms.IdentifyForm, "identify", "Identify user"),
        Page(
            "user_properties",
            "user-properties",
            forms.UserPropertiesForm,
            "properties",
            "Add user properties",
        ),
        Page(
            "user_properties_bulk",
            "user-properties",
            forms.BulkForm,
            "bulk",
            "Add user properties in bulk",
            bulk="users",
        ),
        Page(
            "account_properties",
            "account-properties",
            forms.AccountPropertiesForm,
            "properties",
            "Add account properties",
        ),
        Page(
            "account_properties_bulk",
            "account-properties",
            forms.BulkForm,
            "bulk",
            "Add account properties in bulk",
            bulk="accounts",
        ),
        Page("link_account", "link-account", forms.LinkAccountForm, "link", "Link user to account"),
        Page("track", "events", forms.TrackForm, "track", "Track event"),
        Page("track_bulk", "events", forms.BulkForm, "bulk", "Track events in bulk", bulk="events"),
    )
}


def _operation(page: Page) -> str:
    """The tool-policy operation of the page (webapp.tool_policy)."""
    return tool_policy.FAMILY_OPERATION[page.family]


def _policies() -> list[tuple[Environment, tool_policy.Policy]]:
    db = get_session()
    return [(env, tool_policy.policy_of(db, env)) for env in list_environments(db)]


def _form(page: Page, policies: list) -> forms.CorrectionForm:
    form = page.form()
    wanted = request.args.get("environment_id", type=int)
    # A post without the picker comes from a page opened before any environment existed.
    preselect = request.method == "GET" or "environment_id" not in request.form
    forms.offer(form, _operation(page), policies, preselect=preselect, wanted=wanted)
    return form


def _body(page: Page, form: forms.CorrectionForm) -> dict:
    if page.bulk is None:
        return form.body()
    # The bulk kinds are named after the list of Heap's bulk body ("users", "accounts", "events").
    return {page.bulk: parse(page.bulk, form.text(), form.format.data).items}


def _carry(page: Page, form: forms.CorrectionForm, filled: dict) -> list[tuple[str, str]]:
    """The posted fields to send back hidden, with the values the desk filled in."""
    pairs = [(k, v) for k, v in request.form.items(multi=True) if k not in NOT_CARRIED]
    if page.bulk is not None:
        pairs = [(k, v) for k, v in pairs if k != "content"] + [("content", form.text())]
    pairs = [(k, v) for k, v in pairs if k not in filled]
    return pairs + sorted(filled.items())


def _show_form(page: Page, form, problems=(), status: int = 200):
    return render_template(
        f"corrections/{page.template}.html", page=page, form=form, problems=problems
    ), status


def _show_preview(page: Page, form, seen, carry, problems=()):
    return render_template(
        "corrections/preview.html",
        page=page,
        form=form,
        seen=seen,
        carry=carry,
        problems=problems,
    )


@bp.url_value_preprocessor
def _allow_large_pastes(endpoint: str | None, _values: dict | None) -> None:
    """Let a pasted bulk file be as large as an uploaded one.

    Flask refuses a multipart text field over 500 kB, and CSRF protection parses the form in
    a before_request hook; URL value preprocessors run before those hooks.
    """
    if endpoint and endpoint.endswith("_bulk"):
        request.max_form_memory_size = current_app.config["MAX_CONTENT_LENGTH"]


def _two_step(page: Page):
    """GET the form; POST step=preview shows what would be sent; step=send sends it."""
    policies = _policies()
    if policies and not any(p.allows(_operation(page)) for _env, p in policies):
        # No environment offers the operation: say so instead of a form nobody can send.
        label = tool_policy.LABELS[_operation(page)]
        return render_template("corrections/switched_off.html", page=page, label=label), 403
    form = _form(page, policies)
    step = request.form.get("step", "")
    if request.method == "GET" or step == "edit":
        return _show_form(page, form)
    if step.startswith("more:") and form.add_rows(step.removeprefix("more:")):
        return _show_form(page, form)
    if not form.validate_on_submit():
        return _show_form(page, form, status=422)
    try:
        body = _body(page, form)
        if step == "send":
            return _send(page, form, body)
        seen = service.preview(
            get_session(), environment_id=form.environment_id.data, family=page.family, data=body
        )
    except (CorrectionInputError, BulkInputError) as error:
        return _show_form(page, form, getattr(error, "problems", [str(error)]), 422)
    return _show_preview(page, form, seen, _carry(page, form, seen.plan.filled))


def _send(page: Page, form, body: dict):
    try:
        correction = service.send(
            get_session(),
            actor=current_user.email,
            environment_id=form.environment_id.data,
            family=page.family,
            data=body,
            override_reason=form.override_reason.data,
            confirm_warnings=form.confirm_warnings.data,
        )
    except CorrectionInputError as error:
        seen = getattr(error, "preview", None)
        if seen is None:
            return _show_form(page, form, error.problems, 422)
        carry = _carry(page, form, seen.plan.filled)
        return _show_preview(page, form, seen, carry, error.problems), 422
    _flash_outcome(correction)
    return redirect(url_for("corrections.detail", correction_id=correction.id))


def _flash_outcome(correction) -> None:
    if correction.state == "awaiting_approval":
        flash(
            f"Correction #{correction.id} is recorded for approval: nothing was sent to Heap. "
            "A second officer approves it on this page.",
            "success",
        )
    elif correction.state == "succeeded":
        flash(f"Correction #{correction.id} sent: Heap accepted it.", "success")
    else:
        flash(
            f"Correction #{correction.id}: Heap did not accept every call "
            f"({correction.heap_message}). Retry it from this page.",
            "error",
        )


def _two_step_view(name: str):
    @role_required(Role.OFFICER)
    def view():
        return _two_step(PAGES[name])

    view.__name__ = name
    view.__doc__ = f"{PAGES[name].title}: preview the exact call, then send it to Heap."
    return view


for _name in PAGES:
    bp.add_url_rule(
        f"/corrections/{_name.replace('_bulk', '/bulk').replace('_', '-')}",
        endpoint=_name,
        view_func=_two_step_view(_name),
        methods=["GET", "POST"],
    )


def _filters(form: forms.HistoryFilterForm) -> dict:
    if not form.validate():
        return {}
    until = form.until.data
    return {
        "operation": form.operation.data or None,
        "state": form.state.data or None,
        "actor": (form.actor.data or "").strip() or None,
        "since": datetime.combine(form.since.data, time.min, UTC) if form.since.data else None,
        "until": datetime.combine(until + timedelta(days=1), time.min, UTC) if until else None,
    }


@bp.get("/corrections")
@role_required(Role.AUDITOR)
def index():
    """The operations an officer can make, and the history of every correction."""
    form = forms.HistoryFilterForm(request.args)
    before = request.args.get("before", type=int)
    before = before if before and 0 < before <= MAX_ID else None  # a stray cursor: first page
    db = get_session()
    rows = service.list_corrections(db, **_filters(form), before=before, limit=PAGE_SIZE + 1)
    args = {k: v for k, v in request.args.items() if k != "before" and v}
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    policies = _policies()
    return render_template(
        "corrections/index.html",
        form=form,
        rows=rows,
        pages=PAGES,
        # The operations some environment offers (with none registered yet, all are shown).
        offered={
            name
            for name, page in PAGES.items()
            if not policies or any(p.allows(_operation(page)) for _env, p in policies)
        },
        labels=forms.OPERATION_LABELS,
        state_labels=forms.STATE_LABELS,
        environments={env.id: env.name for env in list_environments(db)},
        next_url=url_for("corrections.index", **args, before=rows[-1].id) if more else None,
        first_url=url_for("corrections.index", **args) if before else None,
        filtered=bool(args),
        awaiting_count=_awaiting_count(db),
    )


def _awaiting_count(db) -> int:
    """How many corrections by others wait for an approval this officer could give."""
    if not current_user.can(Role.OFFICER):
        return 0
    return approval.awaiting_approval(db, user_id=current_user.id, limit=0)[1]


@bp.get("/corrections/<int:correction_id>")
@role_required(Role.AUDITOR)
def detail(correction_id: int):
    """One correction: what was sent (values to officers, fingerprints to auditors), outcome."""
    try:
        correction, calls = service.get_correction(get_session(), correction_id)
    except service.CorrectionNotFound:
        abort(404)
    show_values = current_user.can(Role.OFFICER)
    return render_template(
        "corrections/detail.html",
        correction=correction,
        environment=get_session().get(Environment, correction.environment_id),
        calls=calls,
        bodies={c.id: json.dumps(service.call_body(c), indent=2, ensure_ascii=False) for c in calls}
        if show_values
        else {},
        fingerprints=json.loads(correction.subject_fingerprints),
        warnings=json.loads(correction.warnings),
        labels=forms.OPERATION_LABELS,
        retryable=service.is_retryable(correction),
        action=ActionForm(),
        decision=decision_for(correction),
        state_labels=forms.STATE_LABELS,
    )


@bp.post("/corrections/<int:correction_id>/retry")
@role_required(Role.OFFICER)
def retry(correction_id: int):
    """Send again the calls Heap has not accepted yet."""
    if ActionForm().validate_on_submit():
        try:
            correction = service.retry(
                get_session(), actor=current_user.email, correction_id=correction_id
            )
        except service.CorrectionNotFound:
            abort(404)
        except CorrectionInputError as error:
            flash(str(error), "error")
        else:
            _flash_outcome(correction)
    return redirect(url_for("corrections.detail", correction_id=correction_id))
