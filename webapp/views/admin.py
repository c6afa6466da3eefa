"""Admin pages: accounts, sign-in security, and API tokens."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlmodel import select

from webapp.accounts import security_log
from webapp.accounts import tokens as api_tokens
from webapp.accounts import users as accounts
from webapp.accounts.access import role_required
from webapp.db import get_session
from webapp.forms import (
    ActionForm,
    PasswordResetForm,
    UserCreateForm,
    UserEditForm,
)
from webapp.models import ApiToken, Role, User, utcnow
from webapp.views.account_forms import ApiTokenForm

bp = Blueprint("admin", __name__)


@bp.get("/admin/users")
@role_required(Role.ADMIN)
def users():
    """Every account with its role, state and lockout."""
    rows = get_session().exec(select(User).order_by(User.email)).all()
    return render_template(
        "admin/users.html", users=rows, now=utcnow(), form=UserCreateForm(), action=ActionForm()
    )


@bp.post("/admin/users")
@role_required(Role.ADMIN)
def create_user():
    """Create an account with an initial password."""
    form = UserCreateForm()
    db = get_session()
    if form.validate_on_submit():
        try:
            accounts.create_user(
                db,
                actor=current_user.email,
                email=form.email.data,
                password=form.password.data,
                role=form.role.data,
                created_by=current_user.id,
            )
            db.commit()
        except accounts.AccountError as error:
            form.email.errors.append(str(error))
        else:
            flash(f"Account {form.email.data.strip().lower()} created.", "success")
            return redirect(url_for("admin.users"))
    rows = db.exec(select(User).order_by(User.email)).all()
    return render_template(
        "admin/users.html", users=rows, now=utcnow(), form=form, action=ActionForm()
    ), 400


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def edit_user(user_id: int):
    """Change an account's role or disable it; its sessions end at once."""
    db = get_session()
    user = db.get(User, user_id) or abort(404)
    form = UserEditForm(data={"role": user.role, "active": user.is_active})
    if form.validate_on_submit():
        try:
            accounts.update_user(
                db,
                actor=current_user.email,
                user_id=user.id,
                role=form.role.data,
                active=form.active.data,
            )
        except accounts.AccountError as error:
            flash(str(error), "error")
        else:
            flash("Account updated; its open sessions were signed out.", "success")
            return redirect(url_for("admin.users"))
    return render_template(
        "admin/user_edit.html",
        user=user,
        form=form,
        reset_form=PasswordResetForm(),
        action=ActionForm(),
        now=utcnow(),
    )


@bp.post("/admin/users/<int:user_id>/password")
@role_required(Role.ADMIN)
def reset_password(user_id: int):
    """Set a new password for someone who lost theirs."""
    form = PasswordResetForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(
                get_session(),
                actor=current_user.email,
                user_id=user_id,
                password=form.password.data,
            )
        except accounts.AccountError as error:
            flash(str(error), "error")
        else:
            flash("Password set; the account's sessions were signed out.", "success")
    else:
        flash("The password must be at least 12 characters long.", "error")
    return redirect(url_for("admin.edit_user", user_id=user_id))


@bp.post("/admin/users/<int:user_id>/unlock")
@role_required(Role.ADMIN)
def unlock_user(user_id: int):
    """Lift a lockout after repeated failed sign-ins."""
    if ActionForm().validate_on_submit():
        try:
            accounts.unlock_user(get_session(), actor=current_user.email, user_id=user_id)
        except accounts.AccountError as error:
            flash(str(error), "error")
        else:
            flash("Account unlocked.", "success")
    return redirect(url_for("admin.security"))


@bp.get("/admin/security")
@role_required(Role.ADMIN)
def security():
    """Locked accounts, throttled networks, re-authentication failures and four-eyes events."""
    db = get_session()
    now = utcnow()
    locked = db.exec(select(User).where(User.locked_until > now).order_by(User.email)).all()
    return render_template(
        "admin/security.html",
        locked=locked,
        ips=accounts.throttled_ips(db),
        action=ActionForm(),
        ip_limit=accounts.IP_MAX_FAILURES,
        reauth_failures=security_log.reauth_failures(db),
        four_eyes=security_log.four_eyes_events(db),
    )


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    """One's API tokens (every token for admins); a new token is shown exactly once."""
    db = get_session()
    form = ApiTokenForm().for_role(current_user.role)
    new_token = None
    if form.validate_on_submit():
        try:
            new_token = api_tokens.create_api_token(
                db,
                actor=current_user.email,
                user=db.get(User, current_user.id),
                name=form.name.data,
                scope=form.scope.data,
                days=form.lifetime,
            )
        except accounts.AccountError as error:
            form.name.errors.append(str(error))
        else:
            form = ApiTokenForm(formdata=None).for_role(current_user.role)
    query = select(ApiToken, User).join(User, User.id == ApiToken.user_id)
    if not current_user.can(Role.ADMIN):
        query = query.where(ApiToken.user_id == current_user.id)
    rows = db.exec(query.order_by(ApiToken.created_at.desc())).all()
    page = render_template(
        "admin/tokens.html",
        rows=rows,
        form=form,
        new_token=new_token,
        action=ActionForm(),
        now=utcnow(),
        revoked_because=api_tokens.REVOKED_BECAUSE,
    )
    return page, 400 if form.is_submitted() and new_token is None else 200


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    """Revoke an API token at once."""
    if ActionForm().validate_on_submit():
        db = get_session()
        try:
            api_tokens.revoke_api_token(db, actor=db.get(User, current_user.id), token_id=token_id)
        except accounts.AccountError as error:
            flash(str(error), "error")
        else:
            flash("Token revoked.", "success")
    return redirect(url_for("admin.tokens"))
