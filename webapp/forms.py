"""Flask-WTF forms for accounts, environments and the audit page (CSRF on every one), and the
checks every field of every request passes: text the desk can store, whole numbers in range."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from flask import abort, request
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
from wtforms.widgets import TextInput

from webapp.models import MAX_ID, Region, Role

ROLE_CHOICES = [SelectChoice(r.value, r.value.capitalize()) for r in Role]
PASSWORD_HELP = "At least 12 characters. A long phrase is easiest to remember."  # noqa: S105
PASSWORD_LENGTH = Length(
    min=12, max=256, message="The password must be 12 to 256 characters long (at least 12)."
)

# CSRF on every form and POST; created unbound and bound in create_app with init_app.
csrf = CSRFProtect()

# PostgreSQL cannot store NUL in text; a lone UTF-16 surrogate (half of a pair, which JSON's
# "\ud800" escape can carry) is no character at all and cannot even be encoded as UTF-8, so
# storing, logging or showing it fails. No field of the desk has a use for either.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


class UnfitInput(ValueError):
    """A query argument the desk cannot take; the message says which and why."""


def unstorable_text(value: Any) -> str | None:
    """What makes any text in `value` (a string, or JSON's dicts and lists, keys included)
    unstorable, as a message for the person who sent it; None when all of it is fine.

    The one check of forms, query strings and JSON bodies. Iterative: a body may be as deeply
    nested as the JSON parser allows.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            found = _UNSTORABLE.search(item)
            if found is None:
                continue
            char = found.group()
            if char == "\x00":
                return (
                    "A field of the request contains a NUL character (\\u0000): text must not "
                    "contain NUL characters. Remove it and try again."
                )
            return (
                f"A field of the request contains a lone UTF-16 surrogate (\\u{ord(char):04x}), "
                "half of a character's encoding: text must be valid Unicode. "
                "Remove it and try again."
            )
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Python's Unicode database gives control characters no names; these are the ones people meet.
_CONTROL_NAMES = {
    0x00: "NULL",
    0x09: "CHARACTER TABULATION",
    0x0A: "LINE FEED",
    0x0B: "LINE TABULATION",
    0x0C: "FORM FEED",
    0x0D: "CARRIAGE RETURN",
    0x1B: "ESCAPE",
    0x7F: "DELETE",
    0x85: "NEXT LINE",
}


def hidden_character(text: str) -> str | None:
    """The first control (Cc) or invisible format (Cf) character in an identifier, described
    without quoting the text: "control characters (U+0009 CHARACTER TABULATION at position 4)"
    or "an invisible character U+200B ZERO WIDTH SPACE at position 6"; None if there is none.

    Zero-width characters and bidi overrides make look-alikes of real identities: shown on a
    page, `alice\u200b@…` and `alice@…` cannot be told apart (uploads and corrections share
    this rule).
    """
    if text.isascii():  # the common case, fast: 10,000 rows pass here per upload
        found = _ASCII_CONTROL.search(text)
        if found is None:
            return None
        index = found.start()
    else:
        category = unicodedata.category
        index = next((i for i, ch in enumerate(text) if category(ch) in ("Cc", "Cf")), -1)
        if index < 0:
            return None
    char = text[index]
    label = f"U+{ord(char):04X} {unicodedata.name(char, _CONTROL_NAMES.get(ord(char), ''))}"
    where = f"{label.rstrip()} at position {index + 1}"
    if unicodedata.category(char) == "Cc":
        return f"control characters ({where})"
    return f"an invisible character {where}"


def whole_number(
    name: str, default: int | None = None, *, minimum: int = 0, maximum: int = MAX_ID
) -> int | None:
    """The query argument `name` as a whole number in [minimum, maximum], or UnfitInput.

    The bound keeps a number past the database's integers (which would be a 500) out of
    every query; pages and the API share it.
    """
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    # Length first: int() of thousands of digits is slow, and refused past 4,300.
    digits = raw.isascii() and raw.isdigit() and len(raw) <= len(str(maximum))
    if not digits or not minimum <= int(raw) <= maximum:
        raise UnfitInput(f"'{name}' must be a whole number from {minimum} to {maximum}.")
    return int(raw)


def page_number(name: str, default: int | None = None, **bounds: int) -> int | None:
    """whole_number() for a page: an unfit value is a 400 page that names it."""
    try:
        return whole_number(name, default, **bounds)
    except UnfitInput as error:
        abort(400, str(error))


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


class IsoDateField(DateField):
    """A date typed as YYYY-MM-DD, as the desk writes dates everywhere.

    A text box rather than the browser's date picker, which shows the viewer's locale format
    (mm/dd/yyyy in Chromium's en-US) while every page, file and export says YYYY-MM-DD.
    """

    widget = TextInput()

    def __init__(self, label=None, validators=None, **kwargs):
        render_kw = {
            "placeholder": "YYYY-MM-DD",
            "inputmode": "numeric",
            "pattern": r"\d{4}-\d{2}-\d{2}",
            "autocomplete": "off",
            "spellcheck": "false",
            **(kwargs.pop("render_kw", None) or {}),
        }
        super().__init__(label, validators, format="%Y-%m-%d", render_kw=render_kw, **kwargs)

    def process_formdata(self, valuelist):
        try:
            super().process_formdata([value.strip() for value in valuelist])
        except ValueError:
            raise ValueError("Write the date as YYYY-MM-DD, for example 2026-03-31.") from None


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET filter changes nothing

    actor = StringField("Actor", validators=[Optional(), Length(max=254)])
    action = StringField("Action", validators=[Optional(), Length(max=64)])
    target_type = StringField("Target type", validators=[Optional(), Length(max=32)])
    target_id = StringField("Target id", validators=[Optional(), Length(max=64)])
    since = IsoDateField("From", validators=[Optional()])
    until = IsoDateField("To (inclusive)", validators=[Optional()])
