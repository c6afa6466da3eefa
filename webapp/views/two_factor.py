"""Two-factor pages: the code step of sign-in, enrolment, one's own settings, an admin's reset.

Between the right password and the right code nobody is signed in: Flask's session holds only
a "second factor pending" marker (user id, stage, expiry of 5 minutes), and no LoginSession
exists until the code is accepted.
"""

from __future__ import annotations

from datetime import timedelta

import segno
from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from webapp.accounts import enrolment as two_factor_enrolment
from webapp.accounts import sessions as login_sessions
from webapp.accounts import two_factor
from webapp.accounts.access import Principal, client_ip, role_required, safe_next
from webapp.accounts.sign_in import AccountLocked
from webapp.db import get_session
from webapp.forms import ActionForm
from webapp.models import Role, User, utcnow
from webapp.views.two_factor_forms import (
    CodeForm,
    ConfirmEnrolmentForm,
    ReauthForm,
    StartEnrolmentForm,
)

bp = Blueprint("two_factor", __name__)

PENDING_KEY = "desk_2fa_pending"
PENDING_MINUTES = 5


def start_pending(user_id: int, stage: str, next_url: str | None) -> str:
    """Remember a right password for 5 minutes; return where the person goes next."""
    session.clear()  # nothing from before sign-in survives into the new session
    expires = utcnow() + timedelta(minutes=PENDING_MINUTES)
    session[PENDING_KEY] = {
        "user_id": user_id,
        "stage": stage,
        "expires": expires.timestamp(),
        "next": safe_next(next_url),
    }
    return url_for("two_factor.verify" if stage == "verify" else "two_factor.enrol")


def _pending(stage: str) -> dict | None:
    marker = session.get(PENDING_KEY)
    if not marker or marker.get("stage") != stage:
        return None
    if marker.get("expires", 0) <= utcnow().timestamp():
        session.pop(PENDING_KEY, None)
        return None
    return marker


def _signed_in(signed_in, marker: dict) -> str:
    session.clear()
    # Flask-WTF caches this request's CSRF token in `g`; it belonged to the cleared session.
    # The page rendered next (the recovery codes) must carry the new session's, or its forms
    # (the header's Sign out) would be refused.
    g.pop("csrf_token", None)
    login_user(Principal.of(signed_in.user, session_token=signed_in.session_token))
    return marker.get("next") or url_for("home.dashboard")


def sign_out_locked(error: AccountLocked):
    """A re-authentication locked the account: end this session and say why, plainly."""
    if current_user.is_authenticated and current_user.session_token:
        login_sessions.end_session(
            get_session(), raw_token=current_user.session_token, actor=current_user.email
        )
    logout_user()
    session.clear()
    flash(str(error), "error")
    return redirect(url_for("auth.login"))


def _expired():
    if current_user.is_authenticated:
        return redirect(url_for("home.dashboard"))
    flash("Your sign-in has expired or was not started. Sign in again.", "info")
    return redirect(url_for("auth.login"))


def qr_data_uri(uri: str) -> str:
    """The otpauth URI as an SVG QR code in a data: URI (the CSP allows data: images)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def _setup_page(enrolment, start_form, confirm_form, urls: dict, status: int = 200):
    return render_template(
        "auth/two_factor_setup.html",
        enrolment=enrolment,
        qr=qr_data_uri(enrolment.uri) if enrolment else None,
        start_form=start_form,
        confirm_form=confirm_form,
        urls=urls,
    ), status


# --- sign-in ------------------------------------------------------------------------------


@bp.route("/login/code", methods=["GET", "POST"])
def verify():
    """The second step of sign-in: a code from the app, or a recovery code."""
    marker = _pending("verify")
    if marker is None:
        return _expired()
    form = CodeForm()
    if form.validate_on_submit():
        try:
            signed_in = two_factor.verify_sign_in(
                get_session(),
                user_id=marker["user_id"],
                code=form.code.data,
                ip=client_ip(),
                user_agent=request.headers.get("User-Agent", ""),
            )
        except two_factor.TwoFactorError as error:
            form.code.errors.append(str(error))
        else:
            return redirect(_signed_in(signed_in, marker))
    return render_template("auth/two_factor_verify.html", form=form)


SIGN_IN_URLS = {"start": "two_factor.enrol_start", "confirm": "two_factor.enrol_confirm"}


@bp.get("/login/setup")
def enrol():
    """Set-up owed at sign-in: nothing else is reachable until it is done."""
    marker = _pending("enrol")
    if marker is None:
        return _expired()
    found = two_factor_enrolment.pending_enrolment(get_session(), user_id=marker["user_id"])
    return _setup_page(found, ActionForm(), ConfirmEnrolmentForm(), SIGN_IN_URLS)


@bp.post("/login/setup/start")
def enrol_start():
    """Create the secret to scan (the password was checked moments ago)."""
    marker = _pending("enrol")
    if marker is None:
        return _expired()
    if ActionForm().validate_on_submit():
        two_factor_enrolment.begin_enrolment(get_session(), user_id=marker["user_id"])
    return redirect(url_for("two_factor.enrol"))


@bp.post("/login/setup")
def enrol_confirm():
    """Confirm the app with a code; the session opens and the recovery codes show once."""
    marker = _pending("enrol")
    if marker is None:
        return _expired()
    form = ConfirmEnrolmentForm()
    db = get_session()
    if form.validate_on_submit():
        try:
            signed_in, codes = two_factor_enrolment.enrol_and_sign_in(
                db,
                user_id=marker["user_id"],
                code=form.code.data,
                ip=client_ip(),
                user_agent=request.headers.get("User-Agent", ""),
            )
        except two_factor.TwoFactorError as error:
            form.code.errors.append(str(error))
        else:
            return render_template(
                "auth/two_factor_codes.html", codes=codes, next=_signed_in(signed_in, marker)
            )
    found = two_factor_enrolment.pending_enrolment(db, user_id=marker["user_id"])
    return _setup_page(found, ActionForm(), form, SIGN_IN_URLS, status=400)


# --- one's own account --------------------------------------------------------------------

ACCOUNT_URLS = {"start": "two_factor.account_start", "confirm": "two_factor.account_confirm"}


@bp.get("/account/two-factor")
@role_required(Role.AUDITOR)  # every role includes auditor: any signed-in person
def account():
    """Status, set-up, new recovery codes, removal."""
    db = get_session()
    if two_factor.authenticator(db, current_user.id) is None:
        found = two_factor_enrolment.pending_enrolment(db, user_id=current_user.id)
        return _setup_page(found, StartEnrolmentForm(), ConfirmEnrolmentForm(), ACCOUNT_URLS)
    return render_template(
        "auth/two_factor_account.html",
        codes_left=two_factor.recovery_codes_left(db, current_user.id),
        required=current_user.role in two_factor.required_roles(),
        regenerate_form=ReauthForm(prefix="regenerate"),
        remove_form=ReauthForm(prefix="remove"),
    )


@bp.post("/account/two-factor/start")
@role_required(Role.AUDITOR)
def account_start():
    """Start setting up an app, after the current password."""
    form = StartEnrolmentForm()
    if form.validate_on_submit():
        try:
            two_factor_enrolment.begin_enrolment(
                get_session(), user_id=current_user.id, password=form.password.data
            )
        except AccountLocked as error:
            return sign_out_locked(error)
        except two_factor.TwoFactorError as error:
            flash(str(error), "error")
    return redirect(url_for("two_factor.account"))


@bp.post("/account/two-factor/confirm")
@role_required(Role.AUDITOR)
def account_confirm():
    """Confirm the app with a code; the recovery codes show once."""
    form = ConfirmEnrolmentForm()
    db = get_session()
    if form.validate_on_submit():
        try:
            codes = two_factor_enrolment.confirm_enrolment(
                db, user_id=current_user.id, code=form.code.data, ip=client_ip()
            )
        except two_factor.TwoFactorError as error:
            form.code.errors.append(str(error))
        else:
            flash("Two-factor sign-in is on.", "success")
            return render_template("auth/two_factor_codes.html", codes=codes, next=None)
    found = two_factor_enrolment.pending_enrolment(db, user_id=current_user.id)
    return _setup_page(found, StartEnrolmentForm(), form, ACCOUNT_URLS, status=400)


@bp.post("/account/two-factor/recovery-codes")
@role_required(Role.AUDITOR)
def account_regenerate():
    """Replace the recovery codes, after password and a current code."""
    form = ReauthForm(prefix="regenerate")
    if form.validate_on_submit():
        try:
            codes = two_factor_enrolment.regenerate_recovery_codes(
                get_session(),
                user_id=current_user.id,
                password=form.password.data,
                code=form.code.data,
                ip=client_ip(),
            )
        except AccountLocked as error:
            return sign_out_locked(error)
        except two_factor.TwoFactorError as error:
            flash(str(error), "error")
        else:
            return render_template("auth/two_factor_codes.html", codes=codes, next=None)
    else:
        flash("Enter your current password and a code from your app.", "error")
    return redirect(url_for("two_factor.account"))


@bp.post("/account/two-factor/remove")
@role_required(Role.AUDITOR)
def account_remove():
    """Remove one's authenticator (e.g. a new phone); every session ends, this one too."""
    form = ReauthForm(prefix="remove")
    if form.validate_on_submit():
        try:
            two_factor_enrolment.remove_own(
                get_session(),
                user_id=current_user.id,
                password=form.password.data,
                code=form.code.data,
                ip=client_ip(),
            )
        except AccountLocked as error:
            return sign_out_locked(error)
        except two_factor.TwoFactorError as error:
            flash(str(error), "error")
        else:
            logout_user()
            session.clear()
            flash("Your authenticator was removed. Sign in again.", "info")
            return redirect(url_for("auth.login"))
    else:
        flash("Enter your current password and a code from your app.", "error")
    return redirect(url_for("two_factor.account"))


# --- admins -------------------------------------------------------------------------------


@bp.get("/admin/users/<int:user_id>/two-factor")
@role_required(Role.ADMIN)
def admin_status(user_id: int):
    """Whether an account has an authenticator, and the reset for a lost phone."""
    db = get_session()
    user = db.get(User, user_id) or abort(404)
    return render_template(
        "auth/two_factor_admin.html",
        user=user,
        enrolled=two_factor.authenticator(db, user.id) is not None,
        codes_left=two_factor.recovery_codes_left(db, user.id),
        required=two_factor.is_required(user),
        action=ActionForm(),
    )


@bp.post("/admin/users/<int:user_id>/two-factor/reset")
@role_required(Role.ADMIN)
def admin_reset(user_id: int):
    """Remove someone's authenticator; their sessions end and they enrol again if required."""
    if ActionForm().validate_on_submit():
        try:
            two_factor_enrolment.admin_reset(
                get_session(), actor=current_user.email, user_id=user_id
            )
        except two_factor.TwoFactorError as error:
            flash(str(error), "error")
        else:
            flash("Two-factor sign-in was reset; the person's sessions were signed out.", "success")
    return redirect(url_for("two_factor.admin_status", user_id=user_id))
