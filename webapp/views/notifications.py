"""The inbox page, its unread count in the header, mark read, and e-mail preferences."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.exc import SQLAlchemyError
from wtforms import BooleanField, SubmitField

from webapp.accounts.access import role_required
from webapp.db import get_session
from webapp.forms import ActionForm
from webapp.models import NotificationKind, Role
from webapp.notifications import inbox, preferences

log = logging.getLogger(__name__)
bp = Blueprint("notifications", __name__)
# The header asks for the unread count this often (seconds): well within "a minute".
DEFAULT_POLL_SECONDS = 30


class PreferencesForm(FlaskForm):
    """Which notifications also come by e-mail: one checkbox per kind."""

    submit = SubmitField("Save e-mail preferences")


for _kind, _label in preferences.KIND_LABELS.items():
    setattr(PreferencesForm, _kind.value, BooleanField(_label))


def unread_notifications() -> int | None:
    """The signed-in person's unread count for the header (None: not signed in, or no DB)."""
    if not current_user.is_authenticated:
        return None
    try:
        return inbox.unread_count(get_session(), current_user.id)
    except SQLAlchemyError:  # an error page must still render
        log.warning("could not count unread notifications", exc_info=True)
        return None


@bp.app_context_processor
def header_context() -> dict:
    """What base.html's header needs on every page."""
    return {
        "unread_notifications": unread_notifications,
        "notification_poll_seconds": current_app.config.get(
            "DESK_NOTIFICATION_POLL_SECONDS", DEFAULT_POLL_SECONDS
        ),
    }


def _preferences_form() -> PreferencesForm:
    chosen = preferences.email_preferences(get_session(), current_user.id)
    return PreferencesForm(data={kind.value: on for kind, on in chosen.items()})


@bp.get("/notifications")
@role_required(Role.AUDITOR)
def index():
    """The person's notifications, newest first, and which of them come by e-mail."""
    return render_template(
        "notifications/index.html",
        notifications=inbox.notifications_for(get_session(), current_user.id),
        labels=preferences.KIND_LABELS,
        action=ActionForm(),
        form=_preferences_form(),
        mail_configured=bool(
            current_app.config.get("DESK_SMTP_HOST") and current_app.config.get("DESK_SMTP_FROM")
        ),
    )


@bp.get("/notifications/unread.json")
@role_required(Role.AUDITOR)
def unread():
    """The unread count, for the header to refresh itself without a reload."""
    return {"unread": inbox.unread_count(get_session(), current_user.id)}


@bp.post("/notifications/<int:notification_id>/read")
@role_required(Role.AUDITOR)
def mark_read(notification_id: int):
    """Mark one notification read."""
    if not ActionForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for("notifications.index"))
    try:
        inbox.mark_read(get_session(), user_id=current_user.id, notification_id=notification_id)
    except inbox.NotificationNotFound:
        abort(404)
    return redirect(url_for("notifications.index"))


@bp.post("/notifications/read-all")
@role_required(Role.AUDITOR)
def mark_all_read():
    """Mark every notification read."""
    if not ActionForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for("notifications.index"))
    count = inbox.mark_all_read(get_session(), user_id=current_user.id)
    flash(f"{count} notification{'' if count == 1 else 's'} marked read.", "success")
    return redirect(url_for("notifications.index"))


@bp.post("/notifications/preferences")
@role_required(Role.AUDITOR)
def save_preferences():
    """Store which notifications come by e-mail (audited)."""
    form = PreferencesForm()
    if not form.validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for("notifications.index", _anchor="preferences"))
    preferences.update_email_preferences(
        get_session(),
        actor=current_user.email,
        user_id=current_user.id,
        email={kind: bool(form[kind.value].data) for kind in NotificationKind},
    )
    flash("E-mail preferences saved.", "success")
    return redirect(url_for("notifications.index", _anchor="preferences"))
