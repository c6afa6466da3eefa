"""Forms of two-factor sign-in: codes, re-authentication, and the password change with a code."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from webapp.forms import ChangePasswordForm

CODE_HELP = "The 6-digit code your authenticator app shows now."


def _code_field(label: str = "Authentication code", required: bool = True, help_text=CODE_HELP):
    checks = [DataRequired(message="Enter the code.")] if required else [Optional()]
    return StringField(
        label,
        description=help_text,
        validators=[*checks, Length(max=32)],
        render_kw={"inputmode": "numeric"},
    )


class CodeForm(FlaskForm):
    code = _code_field(
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes."
    )
    submit = SubmitField("Verify")


class ConfirmEnrolmentForm(FlaskForm):
    code = _code_field(help_text="Scan the QR code, then enter the 6-digit code the app shows.")
    submit = SubmitField("Turn on two-factor sign-in")


class StartEnrolmentForm(FlaskForm):
    password = PasswordField("Current password", validators=[DataRequired(), Length(max=256)])
    submit = SubmitField("Set up an authenticator app")


class ReauthForm(FlaskForm):
    """Password and current code, before recovery codes are replaced or the app removed."""

    password = PasswordField("Current password", validators=[DataRequired(), Length(max=256)])
    code = _code_field()
    submit = SubmitField("Confirm")


class PasswordChangeWithCodeForm(ChangePasswordForm):
    code = _code_field(required=False)
