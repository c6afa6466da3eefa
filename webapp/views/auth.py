"""Setup, sign-in, sign-out and password change."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from webapp.accounts import sessions as login_sessions
from webapp.accounts import users as accounts
from webapp.accounts.access import Principal, client_ip, safe_next
from webapp.accounts.sign_in import AccountLocked
from webapp.accounts.two_factor import TwoFactorError, authenticator
from webapp.db import get_session
from webapp.forms import LoginForm, SetupForm
from webapp.models import User
from webapp.views.account_forms import PasswordChangeForm
from webapp.views.two_factor import sign_out_locked, start_pending

bp = Blueprint("auth", __name__)


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """Create the first admin; closed for good once any account exists."""
    db = get_session()
    if accounts.user_count(db):
        return redirect(url_for("auth.login"))
    form = SetupForm()
    if form.validate_on_submit():
        try:
            accounts.create_first_admin(db, email=form.email.data, password=form.password.data)
        except accounts.AccountError as error:
            form.email.errors.append(str(error))
        else:
            current_app.extensions["desk_setup_done"] = True
            flash("The admin account is ready. Sign in to continue.", "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/setup.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in; a fresh server-side session (and cookie) every time."""
    if current_user.is_authenticated:
        return redirect(url_for("home.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            signed_in = accounts.authenticate(
                get_session(),
                email=form.email.data,
                password=form.password.data,
                ip=client_ip(),
                user_agent=request.headers.get("User-Agent", ""),
            )
        except accounts.AccountError as error:
            flash(str(error), "error")
        else:
            if signed_in.second_factor:  # no session yet: a code (or enrolment) comes first
                user_id, stage = signed_in.user.id, signed_in.second_factor
                return redirect(start_pending(user_id, stage, request.args.get("next")))
            session.clear()  # nothing from before sign-in survives into the new session
            login_user(Principal.of(signed_in.user, session_token=signed_in.session_token))
            return redirect(safe_next(request.args.get("next")) or url_for("home.dashboard"))
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    """Sign out and revoke the session row, so a copied cookie stops working."""
    login_sessions.end_session(
        get_session(), raw_token=current_user.session_token, actor=current_user.email
    )
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change one's own password; other sessions and the API tokens not kept end."""
    db = get_session()
    form = PasswordChangeForm().with_tokens(accounts.live_api_tokens(db, current_user.id))
    if form.validate_on_submit():
        try:
            accounts.change_password(
                db,
                user=db.get(User, current_user.id),
                current=form.current.data,
                new=form.new.data,
                keep_session_id=current_user.session_id,
                code=form.code.data,
                keep_token_ids=form.keep_tokens.data or [],
                ip=client_ip(),
            )
        except AccountLocked as error:
            return sign_out_locked(error)
        except TwoFactorError as error:
            form.code.errors.append(str(error))
        except accounts.AccountError as error:
            form.new.errors.append(str(error))
        else:
            flash(
                "Your password is changed. Your other sessions were signed out and the API "
                "tokens you did not keep were revoked.",
                "success",
            )
            return redirect(url_for("home.dashboard"))
    needs_code = authenticator(db, current_user.id) is not None
    page = render_template("auth/password.html", form=form, needs_code=needs_code)
    return page, 400 if form.is_submitted() else 200
