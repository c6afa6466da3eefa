"""The dashboard: where an officer starts the day."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user

from .. import audit
from ..db import get_session
from ..environments import list_environments
from ..models import Role
from ..security import role_required

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
    """What needs attention now."""
    db = get_session()
    return render_template(
        "home/dashboard.html",
        environments=list_environments(db),
        audit_entries=audit.count(db),
    )
