"""Forms of the batch and subject pages (Flask-WTF: CSRF on every POST)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from webapp.erasure.batches import MAX_REASON_LENGTH, MAX_REFERENCE_LENGTH, state_label
from webapp.erasure.bulk_lookup import MAX_PEOPLE
from webapp.erasure.queries import BatchFilters
from webapp.erasure.row_fixes import MAX_EXCLUSION_REASON
from webapp.forms import IsoDateField
from webapp.models import BatchState

PASTE_KIND_CHOICES = [
    SelectChoice("identity", "Identities (e-mail addresses or other Heap identities)"),
    SelectChoice("user_id", "user_ids (Heap's numeric user ids)"),
]
# Longer than any identifier Heap takes, so the service names the real rule.
MAX_CORRECTION_LENGTH = 1000
STATE_CHOICES = [SelectChoice("", "Any state")] + [
    SelectChoice(s.value, state_label(s.value).capitalize()) for s in BatchState
]


class UploadForm(FlaskForm):
    environment_id = SelectField("Heap environment", coerce=int, validators=[InputRequired()])
    file = FileField(
        "CSV file",
        description="UTF-8 CSV with a header line naming user_id and/or identity (or email); "
        "optional columns received_on (YYYY-MM-DD) and reference. Comma, semicolon or tab.",
    )
    pasted = TextAreaField(
        "…or paste a list",
        description="One identifier per line. Surrounding spaces are removed; letter case is "
        "kept (Heap identities are case-sensitive).",
        render_kw={"rows": 6, "spellcheck": "false", "autocomplete": "off"},
    )
    paste_kind = RadioField("The pasted lines are", choices=PASTE_KIND_CHOICES, default="identity")
    received_on = IsoDateField(
        "Requests received on",
        validators=[Optional()],
        description="When the people's requests arrived (UTC). Rows with their own received_on "
        "keep theirs. Empty means today. The deadline is one calendar month later.",
    )
    reference = StringField(
        "Reference",
        validators=[Optional(), Length(max=MAX_REFERENCE_LENGTH)],
        description="Optional: the ticket or case this list belongs to.",
    )
    submit = SubmitField("Upload and validate")

    def validate_pasted(self, field):
        has_file = bool(self.file.data and getattr(self.file.data, "filename", ""))
        if has_file and (field.data or "").strip():
            raise ValidationError("Choose a file or paste a list, not both.")
        if not has_file and not (field.data or "").strip():
            raise ValidationError("Choose a CSV file or paste a list.")


class ApproveForm(FlaskForm):
    """Approval carries the file's and the manifest's SHA-256 the approver saw (on the
    confirmation page), so what was checked is what is approved."""

    sha256 = HiddenField()
    manifest_sha256 = HiddenField(
        validators=[
            DataRequired(
                message="Approve from the confirmation page, which shows the manifest SHA-256 "
                "you approve. Nothing changed."
            )
        ]
    )
    # Required by the service above CHECKED_PREVIEW_ABOVE subjects; shown only then.
    checked_preview = BooleanField("I checked the preview", render_kw={"required": True})
    submit = SubmitField("Approve and queue for submission")


class ExcludeRowForm(FlaskForm):
    """One row taken out of the batch before approval (per-row fields written in the page)."""

    reason = StringField(
        "Reason for excluding",
        validators=[
            DataRequired(message="Give the reason for excluding the row; nothing changed."),
            Length(
                max=MAX_EXCLUSION_REASON,
                message=f"The reason may be at most {MAX_EXCLUSION_REASON} characters; "
                "nothing changed.",
            ),
        ],
    )


class CorrectRowForm(FlaskForm):
    """A malformed row's identifier, corrected before approval."""

    kind = RadioField(
        "The corrected value is",
        choices=[SelectChoice("identity", "an identity"), SelectChoice("user_id", "a user_id")],
        validators=[InputRequired(message="Choose user_id or identity; nothing changed.")],
    )
    value = StringField(
        "Corrected value",
        validators=[
            DataRequired(message="Type the corrected value; nothing changed."),
            Length(
                max=MAX_CORRECTION_LENGTH,
                message="That is longer than any identifier Heap takes; nothing changed.",
            ),
        ],
    )


class RejectForm(FlaskForm):
    reason = TextAreaField(
        "Reason for rejecting",
        validators=[DataRequired(message="Give the reason."), Length(max=MAX_REASON_LENGTH)],
        description="The uploader sees it. Do not write a person's identifier here.",
        render_kw={"rows": 3},
    )
    submit = SubmitField("Reject")


class CancelForm(FlaskForm):
    reason = TextAreaField(
        "Reason for cancelling",
        validators=[DataRequired(message="Give the reason."), Length(max=MAX_REASON_LENGTH)],
        description="Kept with the batch and in the audit trail. Do not write a person's "
        "identifier here.",
        render_kw={"rows": 2},
        id="cancel-reason",  # the reject form's reason field may be on the same page
    )
    submit = SubmitField("Cancel batch")


class ExtendForm(FlaskForm):
    months = RadioField(
        "Extend by",
        coerce=int,
        choices=[SelectChoice(1, "1 month"), SelectChoice(2, "2 months")],
        default=1,
        validators=[InputRequired()],
    )
    reason = TextAreaField(
        "Why the extension is necessary",
        validators=[DataRequired(message="Give the reason."), Length(max=MAX_REASON_LENGTH)],
        description="Art. 12(3): complexity or number of requests. Do not write the person's "
        "identifier here.",
        render_kw={"rows": 3},
    )
    subject_informed_on = IsoDateField(
        "Date the person was told",
        validators=[InputRequired(message="Give the date the person was told.")],
        description="Must fall within the first month after the request arrived.",
    )
    submit = SubmitField("Extend the deadline")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class BatchFilterForm(FlaskForm):
    """The batch list's filters: none of them is personal data, so a GET form (bookmarkable)."""

    class Meta:
        csrf = False  # a GET filter changes nothing

    reference = StringField(
        "Reference contains", validators=[Optional(), Length(max=255)], filters=[_strip]
    )
    filename = StringField(
        "File name contains", validators=[Optional(), Length(max=255)], filters=[_strip]
    )
    uploaded_by = SelectField("Uploaded by", coerce=str, validators=[Optional()])
    state = SelectField("State", choices=STATE_CHOICES, validators=[Optional()])
    environment_id = SelectField("Environment", coerce=str, validators=[Optional()])
    uploaded_from = IsoDateField("Uploaded from", validators=[Optional()])
    uploaded_to = IsoDateField("Uploaded to (inclusive)", validators=[Optional()])

    def validate_uploaded_to(self, field):
        start = self.uploaded_from.data
        if field.data and start and not self.uploaded_from.errors and field.data < start:
            raise ValidationError("The “to” date is before the “from” date.")

    def filters(self) -> BatchFilters:
        """The filters that passed; one with an error (shown beside it) is left out."""

        def ok(field):
            return field.data if field.data and not field.errors else None

        env, uploader = ok(self.environment_id), ok(self.uploaded_by)
        return BatchFilters(
            state=ok(self.state),
            # Only ids offered in the selects pass: never a huge or unknown id.
            environment_id=int(env) if env else None,
            reference=ok(self.reference),
            filename=ok(self.filename),
            uploaded_by=int(uploader) if uploader else None,
            uploaded_from=ok(self.uploaded_from),
            uploaded_to=ok(self.uploaded_to),
        )


class LookupForm(FlaskForm):
    """One person: POSTed, so the identifier never appears in a URL (history, proxy logs)."""

    environment_id = SelectField("Heap environment", coerce=str, validators=[Optional()])
    kind = RadioField(
        "Look up by",
        choices=[SelectChoice("identity", "Identity"), SelectChoice("user_id", "user_id")],
        default="identity",
    )
    value = StringField(
        "Identifier",
        validators=[DataRequired(message="Type the identity or user_id."), Length(max=255)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )


class BulkLookupForm(FlaskForm):
    """Many people at once, pasted or in a file; POSTed like the single lookup."""

    environment_id = SelectField("Heap environment", coerce=str, validators=[Optional()])
    kind = RadioField("The pasted lines are", choices=PASTE_KIND_CHOICES, default="identity")
    pasted = TextAreaField(
        "Paste a list",
        description=f"One identifier per line, up to {MAX_PEOPLE:,}. Identities must match "
        "exactly, letter case included; user_ids match whatever the leading zeros.",
        render_kw={"rows": 8, "spellcheck": "false", "autocomplete": "off"},
    )
    file = FileField(
        "…or choose a CSV file",
        description="UTF-8 CSV with a header line naming user_id and/or identity (or email), "
        "as for an upload; other columns are ignored.",
    )
    submit = SubmitField("Look up")
    download = SubmitField("Download the answer (CSV)")

    def validate_pasted(self, field):
        has_file = bool(self.file.data and getattr(self.file.data, "filename", ""))
        if has_file and (field.data or "").strip():
            raise ValidationError("Choose a file or paste a list, not both.")
        if not has_file and not (field.data or "").strip():
            raise ValidationError("Paste a list or choose a CSV file.")


class RowFindForm(FlaskForm):
    """The batch page's Find: POSTed, so an identifier never lands in a URL."""

    q = StringField(
        "Find an identifier or row number",
        validators=[Optional(), Length(max=255)],
        filters=[_strip],
    )
