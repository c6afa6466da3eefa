"""Forms of one's own account: an API token's name, scope and lifetime; the password change
with the API tokens to keep."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, SelectMultipleField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from webapp.accounts.tokens import DEFAULT_DAYS, MAX_DAYS
from webapp.views.two_factor_forms import PasswordChangeWithCodeForm

DAYS_MESSAGE = f"A token lasts 1 to {MAX_DAYS} days: enter a whole number in that range."
SCOPE_CHOICES = [
    SelectChoice("write", "write — read, and change what the role allows (POST, PUT, DELETE)"),
    SelectChoice("read", "read — GET only: reports, evidence, the audit trail"),
]


class ApiTokenForm(FlaskForm):
    name = StringField(
        "Token name",
        validators=[DataRequired(), Length(max=100)],
        description="What will use it, e.g. 'ticketing integration'.",
    )
    scope = SelectField("Scope", choices=SCOPE_CHOICES, default="write")
    days = StringField(
        "Lasts (days)",
        default=str(DEFAULT_DAYS),
        description=f"1 to {MAX_DAYS}; it stops working afterwards and a new one is needed.",
        render_kw={"inputmode": "numeric"},
    )
    submit = SubmitField("Create token")

    def for_role(self, role: str) -> ApiTokenForm:
        """Auditors are offered (and accept) the read scope only."""
        if role == "auditor":
            self.scope.choices = [choice for choice in SCOPE_CHOICES if choice.value == "read"]
            self.scope.description = "Auditors' tokens can only read."
            if not self.is_submitted():
                self.scope.data = "read"
        return self

    def validate_days(self, field) -> None:
        raw = (field.data or "").strip()
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_DAYS):
            raise ValidationError(DAYS_MESSAGE)

    @property
    def lifetime(self) -> int:
        return int(self.days.data.strip())


class PasswordChangeForm(PasswordChangeWithCodeForm):
    """The password change; ticked API tokens survive it, the others are revoked."""

    keep_tokens = SelectMultipleField(
        "API tokens to keep",
        coerce=int,
        choices=[],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        description="Your other API tokens are revoked with the password change. Keep only "
        "those that must not stop (e.g. an automation) and that nobody else may know.",
    )

    def with_tokens(self, tokens) -> PasswordChangeForm:
        """Offer the account's live tokens as checkboxes (their ids are what is posted)."""
        self.keep_tokens.choices = [
            SelectChoice(
                token.id,
                f"{token.name} ({token.scope}, {token.prefix}…, until {token.expires_at:%Y-%m-%d})",
            )
            for token in tokens
        ]
        return self
