"""Forms of the corrections pages; each turns its fields into the body the service takes.

Property rows are name/type/value triples. static/desk.js adds and removes rows in the page
(cloning the `<template>` row and renumbering the FieldList names); without script "Add 5 more
rows" posts the form back and the server adds five more.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    SelectField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from webapp.corrections.bulk import decode
from webapp.forms import IsoDateField
from webapp.models import CorrectionOperation, CorrectionState, Environment
from webapp.tool_policy import DEFAULT_DESCRIPTIONS, LABELS, Policy

ROWS = 5
MAX_ROWS = 100
OPERATION_LABELS = {
    CorrectionOperation.IDENTIFY: "Identify user",
    CorrectionOperation.USER_PROPERTIES: "User properties",
    CorrectionOperation.USER_PROPERTIES_BULK: "User properties (bulk)",
    CorrectionOperation.ACCOUNT_PROPERTIES: "Account properties",
    CorrectionOperation.ACCOUNT_PROPERTIES_BULK: "Account properties (bulk)",
    CorrectionOperation.LINK_ACCOUNT: "Link user to account",
    CorrectionOperation.TRACK: "Track event",
    CorrectionOperation.TRACK_WITH_USER_PROPERTIES: "Track event + user properties",
    CorrectionOperation.TRACK_BULK: "Track events (bulk)",
}

# What the history and the detail page call each state.
STATE_LABELS = {
    CorrectionState.AWAITING_APPROVAL: "Awaiting approval",
    CorrectionState.REJECTED: "Rejected",
    CorrectionState.SENDING: "Sending",
    CorrectionState.SUCCEEDED: "Accepted by Heap",
    CorrectionState.PARTIAL: "Partly sent",
    CorrectionState.FAILED: "Failed",
}


def _text(value: Any) -> str | None:
    text = (value or "").strip()
    return text or None


# What a property row's value is sent as. Heap keeps text and numbers only (heap-api.md), so
# true/false goes as the text "true" or "false".
KINDS = [
    SelectChoice("text", "Text"),
    SelectChoice("number", "Number"),
    SelectChoice("boolean", "True/false"),
]
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_NOT_FINITE = {"nan", "inf", "infinity"}
# Heap keeps numbers as doubles: a larger whole number would silently change (checks.py).
MAX_WHOLE = 2**53 - 1


def _number(text: str) -> int | float:
    if text.lstrip("+-").casefold() in _NOT_FINITE:
        raise ValueError(f"“{text}” is not a number Heap can keep (NaN and infinity are refused).")
    if not _NUMBER.fullmatch(text):
        raise ValueError(
            f"“{text[:40]}” is not a number: write digits, with a point for decimals, "
            "e.g. 30 or 12.5 (or choose Text)."
        )
    number = Decimal(text)  # exact: "30.0" is whole, and no float rounding decides it
    # 10^16 and above is whole and too large; checked first, as "1e999999999" would overflow.
    if number.adjusted() >= 16 or number == number.to_integral_value():
        if number.adjusted() >= 16 or abs(number) > MAX_WHOLE:
            raise ValueError(
                f"“{text[:40]}” is a whole number beyond ±2^53-1, which Heap cannot keep "
                "exactly: choose Text."
            )
        return int(number)
    value = float(number)
    if value == 0:  # a fraction below what a double holds
        raise ValueError(f"“{text[:40]}” is too small for Heap to keep: choose Text.")
    return value


def typed_value(kind: str, text: str) -> str | int | float:
    """The value of a property row as sent to Heap: text as typed (trimmed), a number as an
    int when whole else a float, true/false as the text "true" or "false"."""
    text = text.strip()
    if kind == "text":
        return text
    if kind == "number":
        return _number(text)
    if kind == "boolean":
        if text.casefold() not in {"true", "false"}:
            raise ValueError(f"true/false takes true or false, not “{text[:40]}”.")
        return text.casefold()
    raise ValueError("Choose text, number or true/false as the type.")


class PropertyRow(Form):
    """One name/type/value row (a plain Form: the page's CSRF token covers it)."""

    key = StringField("Name", validators=[Optional(), Length(max=1023)])
    kind = SelectField("Type", choices=KINDS, default="text")
    value = StringField("Value", validators=[Optional(), Length(max=1023)])


def properties_of(rows: FieldList) -> dict[str, str | int | float]:
    """The filled rows as a property object, each value of its row's type (blank rows are
    ignored; check_rows has refused values that do not fit their type)."""
    return {
        row.key.data.strip(): typed_value(row.kind.data, row.value.data)
        for row in rows
        if _text(row.key.data) and _text(row.value.data)
    }


def check_rows(rows: FieldList) -> None:
    """A value without a name, a name without a value, a name twice, or a value that does not
    fit its row's type is an error."""
    seen = set()
    for number, row in enumerate(rows, 1):
        key, value = _text(row.key.data), _text(row.value.data)
        if value and not key:
            raise ValidationError(f"Row {number} has a value but no property name.")
        if key and not value:
            raise ValidationError(
                f"Property “{key}” has no value. Heap cannot remove a property: enter a value."
            )
        if key and key in seen:
            raise ValidationError(f"Property “{key}” is listed twice.")
        seen.add(key)
        if key and value:
            try:
                typed_value(row.kind.data, value)
            except ValueError as error:
                raise ValidationError(f"Row {number} (“{key[:40]}”): {error}") from None


def rows_field(label: str) -> FieldList:
    return FieldList(FormField(PropertyRow), label=label, min_entries=ROWS, max_entries=MAX_ROWS)


class CorrectionForm(FlaskForm):
    """What every correction asks: the environment, and on the preview the officer's answers.

    Single-item forms add `body()`: the correction in Heap's body shape, as the API takes it.
    """

    environment_id = SelectField(
        "Heap environment",
        coerce=int,
        validators=[DataRequired(message="Choose a Heap environment.")],
    )
    override_reason = TextAreaField(
        "Override reason",
        validators=[Optional(), Length(max=2000)],
        description="Why this person must be written to Heap although the desk is deleting "
        "them (e.g. a ticket number). Kept in the audit trail.",
    )
    confirm_warnings = BooleanField("Send anyway: I have read the warnings above")

    def add_rows(self, name: str) -> bool:
        """Add five empty rows to the FieldList `name`; False if there is no such list."""
        rows = getattr(self, name, None)
        if not isinstance(rows, FieldList):
            return False
        for _ in range(ROWS):
            if len(rows.entries) < MAX_ROWS:
                rows.append_entry()
        return True


def offer(
    form: CorrectionForm,
    operation: str,
    policies: list[tuple[Environment, Policy]],
    *,
    preselect: bool = False,
    wanted: int | None = None,
) -> None:
    """Offer the environments whose tool policy allows `operation` (the others are listed but
    disabled, with the reason) and give the form the policy's description of the operation.

    `preselect` (a GET, or a post without the picker): `wanted` (?environment_id=) is chosen
    if offered, else the only one offered, so the first preview never asks for a choice.
    The description is the chosen environment's, else the desk's own; the page swaps it when
    another environment is picked (static/desk.js reads `descriptions`).
    """
    choices = [SelectChoice(0, "Choose…")]
    offered = [env.id for env, policy in policies if policy.allows(operation)]
    for env, _policy in policies:
        if env.id in offered:
            choices.append(SelectChoice(env.id, env.name))
        else:
            off = f"{env.name} ({LABELS[operation].lower()} switched off by its tool policy)"
            choices.append(SelectChoice(env.id, off, render_kw={"disabled": True}))
    form.environment_id.choices = choices
    if preselect and not form.environment_id.data:
        if wanted in offered:
            form.environment_id.data = wanted
        elif len(offered) == 1:
            form.environment_id.data = offered[0]
    texts = {str(env.id): policy.description(operation) for env, policy in policies}
    form.descriptions = {"0": DEFAULT_DESCRIPTIONS[operation], **texts}
    form.operation_description = form.descriptions.get(
        str(form.environment_id.data or 0), DEFAULT_DESCRIPTIONS[operation]
    )
    form.environment_id.render_kw = {
        "data-describes": "operation-description",
        "aria-describedby": "operation-description",
    }


class IdentifyForm(CorrectionForm):
    user_id = StringField(
        "Heap user_id",
        validators=[Length(max=64)],
        description="The anonymous user's numeric id (digits only, up to 2^53-1).",
    )
    identity = StringField(
        "Identity",
        validators=[Length(max=255)],
        description="Case-sensitive, at most 255 characters, unique to this person.",
    )
    timestamp = StringField(
        "Timestamp (optional)",
        validators=[Length(max=64)],
        description="ISO 8601, e.g. 2025-01-31T14:00:00Z. Empty: now.",
    )

    def body(self) -> dict[str, Any]:
        return {
            "user_id": _text(self.user_id.data),
            "identity": _text(self.identity.data),
            "timestamp": _text(self.timestamp.data),
        }


class UserPropertiesForm(CorrectionForm):
    identity = StringField("Identity", validators=[Length(max=255)])
    properties = rows_field("User properties")

    def validate_properties(self, field: FieldList) -> None:
        check_rows(field)

    def body(self) -> dict[str, Any]:
        return {"identity": _text(self.identity.data), "properties": properties_of(self.properties)}


class AccountPropertiesForm(CorrectionForm):
    account_id = StringField("Account ID", validators=[Length(max=1023)])
    properties = rows_field("Account properties")

    def validate_properties(self, field: FieldList) -> None:
        check_rows(field)

    def body(self) -> dict[str, Any]:
        return {
            "account_id": _text(self.account_id.data),
            "properties": properties_of(self.properties),
        }


class LinkAccountForm(CorrectionForm):
    identity = StringField("Identity", validators=[Length(max=255)])
    account_id = StringField("Account ID", validators=[Length(max=1023)])

    def body(self) -> dict[str, Any]:
        return {"identity": _text(self.identity.data), "account_id": _text(self.account_id.data)}


class TrackForm(CorrectionForm):
    event = StringField("Event name", validators=[Length(max=1024)])
    identity = StringField(
        "Identity", validators=[Length(max=255)], description="Or a user_id, not both."
    )
    user_id = StringField(
        "Heap user_id", validators=[Length(max=64)], description="For an anonymous user."
    )
    timestamp = StringField(
        "Timestamp (optional)",
        validators=[Length(max=64)],
        description="ISO 8601, e.g. 2025-01-31T14:00:00Z. Empty: now.",
    )
    idempotency_key = StringField(
        "Idempotency key (optional)",
        validators=[Length(max=1023)],
        description="Heap keeps only the first event with a key. Empty: the desk makes one.",
    )
    properties = rows_field("Event properties")
    user_properties = rows_field("User properties (optional)")

    def validate_properties(self, field: FieldList) -> None:
        check_rows(field)

    def validate_user_properties(self, field: FieldList) -> None:
        check_rows(field)

    def body(self) -> dict[str, Any]:
        return {
            "event": _text(self.event.data),
            "identity": _text(self.identity.data),
            "user_id": _text(self.user_id.data),
            "timestamp": _text(self.timestamp.data),
            "idempotency_key": _text(self.idempotency_key.data),
            "properties": properties_of(self.properties) or None,
            "user_properties": properties_of(self.user_properties) or None,
        }


class BulkForm(CorrectionForm):
    file = FileField("CSV or JSON file")
    content = TextAreaField(
        "…or paste the rows", validators=[Optional()], render_kw={"rows": 8, "spellcheck": "false"}
    )
    format = SelectField(
        "Format",
        choices=[
            SelectChoice("auto", "Recognise it"),
            SelectChoice("csv", "CSV"),
            SelectChoice("json", "JSON"),
        ],
        default="auto",
    )

    def text(self) -> str:
        """The uploaded file's text (UTF-8, checked), else the pasted text; read once."""
        if not hasattr(self, "_text"):
            upload = self.file.data
            if upload and getattr(upload, "filename", ""):
                self._text = decode(upload.read())
            else:
                self._text = self.content.data or ""
        return self._text


class HistoryFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET filter changes nothing

    operation = SelectField(
        "Operation",
        choices=[SelectChoice("", "Any")]
        + [SelectChoice(op.value, label) for op, label in OPERATION_LABELS.items()],
        validators=[Optional()],
    )
    state = SelectField(
        "State",
        choices=[SelectChoice("", "Any")]
        + [SelectChoice(state.value, label) for state, label in STATE_LABELS.items()],
        validators=[Optional()],
    )
    actor = StringField("Officer", validators=[Optional(), Length(max=254)])
    since = IsoDateField("From", validators=[Optional()])
    until = IsoDateField("To (inclusive)", validators=[Optional()])


class RejectCorrectionForm(FlaskForm):
    """Another officer rejects a correction awaiting approval, or its author withdraws it."""

    reason = TextAreaField(
        "Reason",
        validators=[DataRequired(message="Give the reason."), Length(max=2000)],
        description="Kept with the correction and in the audit trail. Do not write a person's "
        "identifier here.",
        render_kw={"rows": 3},
    )
