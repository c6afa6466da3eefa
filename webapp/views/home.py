"""The dashboard: where an officer starts the day."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user

from webapp.accounts.access import role_required
from webapp.corrections.approval import awaiting_approval as awaiting_corrections
from webapp.db import get_session
from webapp.environments import list_environments
from webapp.erasure.dashboard import dashboard as build_dashboard
from webapp.models import Role

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    """Send people to their dashboard (or to sign in)."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for("home.dashboard"))


@bp.get("/dashboard")
@role_required(Role.AUDITOR)
def dashboard():
    """What needs attention now: approvals (batches, corrections), failures, deadlines, batches."""
    can_approve = current_user.can(Role.OFFICER)
    view = build_dashboard(get_session(), user_id=current_user.id, can_approve=can_approve)
    corrections, corrections_count = (
        awaiting_corrections(get_session(), user_id=current_user.id) if can_approve else ([], 0)
    )
    return render_template(
        "home/dashboard.html",
        view=view,
        corrections=corrections,
        corrections_count=corrections_count,
        environments={env.id: env.name for env in list_environments(get_session())},
    )
