"""Flask-WTF forms for accounts, environments and the audit page (CSRF on every one)."""

from __future__ import annotations

from flask_wtf import CSRFProtect, FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    URL,
    DataRequired,
    Email,
    EqualTo,
    Length,
    Optional,
    Regexp,
    ValidationError,
)

from webapp.models import Region, Role

ROLE_CHOICES = [SelectChoice(r.value, r.value.capitalize()) for r in Role]
PASSWORD_HELP = "At least 12 characters. A long phrase is easiest to remember."  # noqa: S105
PASSWORD_LENGTH = Length(
    min=12, max=256, message="The password must be 12 to 256 characters long (at least 12)."
)

# CSRF on every form and POST; created unbound and bound in create_app with init_app.
csrf = CSRFProtect()


class SetupForm(FlaskForm):
    email = EmailField("Your e-mail address", validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField(
        "Password", description=PASSWORD_HELP, validators=[DataRequired(), PASSWORD_LENGTH]
    )
    confirm = PasswordField(
        "Repeat the password",
        validators=[DataRequired(), EqualTo("password", message="The passwords do not match.")],
    )
    submit = SubmitField("Create the admin account")


class LoginForm(FlaskForm):
    email = EmailField("E-mail address", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    submit = SubmitField("Sign in")


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    new = PasswordField(
        "New password",
        description=PASSWORD_HELP,
        validators=[DataRequired(), PASSWORD_LENGTH],
    )
    confirm = PasswordField(
        "Repeat the new password",
        validators=[DataRequired(), EqualTo("new", message="The passwords do not match.")],
    )
    submit = SubmitField("Change password")


class UserCreateForm(FlaskForm):
    email = EmailField("E-mail address", validators=[DataRequired(), Email(), Length(max=254)])
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.OFFICER.value)
    password = PasswordField(
        "Initial password",
        description=PASSWORD_HELP,
        validators=[DataRequired(), PASSWORD_LENGTH],
    )
    submit = SubmitField("Create account")


class UserEditForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)
    active = BooleanField("Account enabled")
    submit = SubmitField("Save changes")


class PasswordResetForm(FlaskForm):
    password = PasswordField(
        "New password",
        description=PASSWORD_HELP,
        validators=[DataRequired(), PASSWORD_LENGTH],
    )
    submit = SubmitField("Set password")


class ActionForm(FlaskForm):
    """A bare form for POST-only buttons (unlock, revoke, verify): CSRF and nothing else."""

    submit = SubmitField("Confirm")


class TokenCreateForm(FlaskForm):
    name = StringField(
        "Token name",
        validators=[DataRequired(), Length(max=100)],
        description="What will use it, e.g. 'ticketing integration'.",
    )
    submit = SubmitField("Create token")


class EnvironmentForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[DataRequired(), Length(max=100)],
        description="How officers will recognise it, e.g. 'Main Production'.",
    )
    app_id = StringField(
        "Heap app_id",
        validators=[DataRequired(), Regexp(r"^\d{1,20}$", message="The app_id is a number.")],
        description="The environment's numeric id in Heap (Account > Manage > Projects).",
    )
    region = SelectField(
        "Data centre",
        choices=[
            SelectChoice(Region.US.value, "US (heapanalytics.com)"),
            SelectChoice(Region.EU.value, "EU (c.eu.heap-api.com for ingestion)"),
        ],
    )
    base_url = StringField(
        "Base URL override",
        validators=[
            Optional(),
            Length(max=500),
            URL(require_tld=False, message="Enter a full URL, e.g. http://127.0.0.1:8765"),
        ],
        description="Leave empty for Heap itself. Point at a Heap sandbox for demos and tests.",
    )
    main_production = BooleanField(
        "Main Production environment",
        description="Only Main Production's app_id and API key can call Heap's deletion API.",
    )
    api_key = PasswordField(
        "Deletion API key",
        validators=[Optional(), Length(max=500)],
        description="From Heap: Account > Manage > Privacy & Security. Stored encrypted and "
        "never shown again; leave empty to keep the current key.",
    )
    account_property = StringField(
        "Account ID user property",
        validators=[Optional(), Length(max=255)],
        description="The user property Heap uses as Account ID, for linking users to accounts.",
    )
    submit = SubmitField("Save environment")

    def validate_api_key(self, field):
        if self.main_production.data and not field.data and not getattr(self, "key_is_set", False):
            raise ValidationError("Main Production needs its deletion API key.")


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET filter changes nothing

    actor = StringField("Actor", validators=[Optional(), Length(max=254)])
    action = StringField("Action", validators=[Optional(), Length(max=64)])
    target_type = StringField("Target type", validators=[Optional(), Length(max=32)])
    target_id = StringField("Target id", validators=[Optional(), Length(max=64)])
    since = DateField("From", validators=[Optional()])
    until = DateField("To (inclusive)", validators=[Optional()])
