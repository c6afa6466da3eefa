"""Heap environments: list for everyone, changes and connection tests for admins."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from webapp import environments as service
from webapp import tool_policy
from webapp.accounts.access import role_required
from webapp.db import get_session
from webapp.forms import ActionForm, EnvironmentForm
from webapp.models import Role
from webapp.views.policy_forms import PolicyForm

bp = Blueprint("environments", __name__)


def _input(form: EnvironmentForm) -> service.EnvironmentInput:
    return service.EnvironmentInput(
        name=form.name.data,
        app_id=form.app_id.data,
        region=form.region.data,
        base_url=form.base_url.data,
        main_production=form.main_production.data,
        api_key=form.api_key.data,
        account_property=form.account_property.data,
    )


@bp.get("/environments")
@role_required(Role.AUDITOR)
def index():
    """The Heap environments the desk works on."""
    db = get_session()
    envs = service.list_environments(db)
    policies = {env.id: tool_policy.policy_of(db, env) for env in envs}
    return render_template(
        "environments/index.html",
        environments=envs,
        policies=policies,
        labels=tool_policy.LABELS,
        action=ActionForm(),
    )


@bp.route("/environments/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def create():
    """Register a Heap environment."""
    form = EnvironmentForm()
    if form.validate_on_submit():
        try:
            env = service.create_environment(
                get_session(), actor=current_user.email, data=_input(form)
            )
        except service.EnvironmentInputError as error:
            flash(str(error), "error")
            return render_template("environments/form.html", form=form, environment=None), 400
        flash(f"Environment “{env.name}” saved.", "success")
        return redirect(url_for("environments.index"))
    return render_template("environments/form.html", form=form, environment=None)


@bp.route("/environments/<int:environment_id>", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def edit(environment_id: int):
    """Change an environment; the API key is replaced only when a new one is typed."""
    db = get_session()
    try:
        env = service.get_environment(db, environment_id)
    except service.EnvironmentInputError:
        return render_template("errors/404.html", status=404, message="No such environment."), 404
    form = EnvironmentForm(obj=env)
    form.key_is_set = env.api_key_encrypted is not None
    if form.validate_on_submit():
        try:
            service.update_environment(
                db, actor=current_user.email, environment_id=env.id, data=_input(form)
            )
        except service.EnvironmentInputError as error:
            db.rollback()
            flash(str(error), "error")
            page = render_template(
                "environments/form.html", form=form, environment=env, action=ActionForm()
            )
            return page, 400
        flash("Environment saved.", "success")
        return redirect(url_for("environments.index"))
    return render_template(
        "environments/form.html", form=form, environment=env, action=ActionForm()
    )


@bp.post("/environments/<int:environment_id>/test")
@role_required(Role.ADMIN)
def test_connection(environment_id: int):
    """Ask Heap for a token with the stored pair and say whether it worked."""
    if ActionForm().validate_on_submit():
        try:
            ok, message = service.test_connection(
                get_session(), actor=current_user.email, environment_id=environment_id
            )
        except service.EnvironmentInputError as error:
            ok, message = False, str(error)
        flash(message, "success" if ok else "error")
    return redirect(url_for("environments.index"))


@bp.route("/environments/<int:environment_id>/policy", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def policy(environment_id: int):
    """The environment's tool policy: operations offered, four-eyes, limits, descriptions."""
    db = get_session()
    try:
        env = service.get_environment(db, environment_id)
    except service.EnvironmentInputError:
        return render_template("errors/404.html", status=404, message="No such environment."), 404
    current = tool_policy.policy_of(db, env)
    form = PolicyForm()
    problem, status = None, 200
    if request.method == "GET":
        form.fill(current)
    elif form.validate_on_submit():
        try:
            changes = form.changes()
            if tool_policy.changed(current, changes) == current:
                flash("Nothing changed: the policy is as it was.", "info")
                return redirect(url_for("environments.policy", environment_id=env.id))
            tool_policy.update_policy(db, actor=current_user.email, env=env, changes=changes)
        except tool_policy.PolicyInputError as error:
            db.rollback()
            problem = str(error)
        else:
            flash(f"Tool policy of “{env.name}” saved.", "success")
            return redirect(url_for("environments.policy", environment_id=env.id))
    if request.method == "POST":
        status = 400
    page = render_template(
        "environments/policy.html",
        form=form,
        environment=env,
        policy=current,
        last_change=tool_policy.last_change(db, env),
        problem=problem,
    )
    return page, status
