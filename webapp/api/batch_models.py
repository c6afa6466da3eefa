"""The models of the batch and subject endpoints (validated in the view by common.checked).

Each request model is declared once: flask-openapi3 reads the view's annotations (`path`,
`query`, `form`, `body`) to write /api/v1/openapi.json, and `checked()` validates the request
with the same models inside the view, after role_required, answering a refusal with the
desk's plain message and the code these endpoints always used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from werkzeug.datastructures import FileStorage

from webapp.api.common import QueryRefused, Refused, document_only
from webapp.api.schemas import STORABLE, Id, blank_or, whole_number
from webapp.erasure.batches import CHECKED_PREVIEW_ABOVE, MAX_REASON_LENGTH, MAX_REFERENCE_LENGTH
from webapp.heap.validation import MAX_IDENTITY_LENGTH, MAX_USER_ID
from webapp.models import MAX_ID, BatchState


# ---------------------------------------------------------------- field helpers
def _text(name: str):
    def check(value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise Refused(f"'{name}' must be a string.")
        return value

    return check


def _at_most(value: Any, limit: int, message: str) -> Any:
    """The services strip spaces before they count; counting the text as sent here keeps the
    document's maxLength true (a longer value is refused, in the service's words)."""
    if isinstance(value, str) and len(value) > limit:
        raise Refused(message)
    return value


# What str.strip() removes (str.isspace()), spelled out: JSON Schema's "\s" is ECMA-262's,
# which counts U+FEFF as space and U+001C..U+001F and U+0085 not.
SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Text with something besides white space (the services strip it), and no NUL.
FILLED = rf"^[^\x00]*[^\x00{SPACE}][^\x00]*$"
REASON_SCHEMA = {"minLength": 1, "maxLength": MAX_REASON_LENGTH, "pattern": FILLED}


class StrictBody(BaseModel):
    """A JSON body whose fields are all declared: any other is refused by name, as the
    environment and correction bodies refuse theirs (the document says so:
    additionalProperties is false)."""

    model_config = ConfigDict(json_schema_extra=document_only({"additionalProperties": False}))

    @model_validator(mode="before")
    @classmethod
    def _known(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(str(key) for key in data if key not in cls.model_fields)
            if unknown:
                raise Refused(f"Unknown field(s): {', '.join(unknown)}.")
        return data


# ---------------------------------------------------------------- paths
class BatchPath(BaseModel):
    batch_id: Id = Field(description="The batch's id (as the upload or GET /batches answered)")


class SubjectPath(BaseModel):
    subject_id: Id = Field(description="The subject row's id (as a lookup answered)")


# ---------------------------------------------------------------- requests
class BatchListQuery(BaseModel):
    state: BatchState | SkipJsonSchema[None] = Field(None, description="Only batches in this state")
    environment_id: Annotated[int, Field(ge=0, le=MAX_ID)] | SkipJsonSchema[None] = Field(
        None, description="Only this environment's batches (0: all)"
    )
    page: int = Field(1, ge=1, le=MAX_ID, description="Page, from 1")
    per_page: int = Field(
        25, ge=1, le=MAX_ID, description="Batches a page (more than 200 are answered as 200)"
    )

    @field_validator("state", mode="before")
    @classmethod
    def _state(cls, value: Any) -> Any:
        if value in ("", None):
            return None
        if value not in {s.value for s in BatchState}:
            raise QueryRefused(
                f"Unknown state; use one of {', '.join(s.value for s in BatchState)}."
            )
        return value

    @field_validator("environment_id", mode="before")
    @classmethod
    def _environment(cls, value: Any) -> Any:
        return whole_number("environment_id", 0, error=QueryRefused)(value) if value != "" else None

    @field_validator("page", mode="before")
    @classmethod
    def _page(cls, value: Any) -> Any:
        return whole_number("page", 1, error=QueryRefused)(value) if value != "" else 1

    @field_validator("per_page", mode="before")
    @classmethod
    def _per_page(cls, value: Any) -> Any:
        return whole_number("per_page", 1, error=QueryRefused)(value) if value != "" else 25


@dataclass
class UploadedFile:
    """The uploaded list, sent as a file part or as a text part of the form."""

    filename: str | None
    data: bytes


# What every CSV matching it is, so a generated client or a fuzzer sends one the desk takes: a
# header naming the identifier column, then at least one subject. (The desk reads more: other
# and several columns, any header case, quoted values; the description says so.)
LINE_BREAK = r"(\r\n|\r|\n)"
LINE = r'([^\x00\r\n\ufffd"][^\x00\r\n\ufffd]*)?'
CSV_TEXT = (
    rf"^\ufeff?(email|identity|user_id)({LINE_BREAK}{LINE})*"
    rf"{LINE_BREAK}[!#-~][^\x00\r\n\ufffd]*({LINE_BREAK}{LINE})*$"
)
NOT_UTF8 = (
    "The file is not UTF-8 text (some of its bytes cannot be read). "
    "Save it as “CSV UTF-8” and upload that."
)


class UploadForm(BaseModel):
    """multipart/form-data: the CSV and what the batch is for."""

    model_config = ConfigDict(
        json_schema_extra=document_only({"additionalProperties": False}),
        openapi_extra={"encoding": {"file": {"contentType": "text/csv"}}},
    )

    environment_id: int = Field(
        ge=1, le=MAX_ID, description="The id of the Heap environment the list belongs to"
    )
    # Sent empty, it is absent (today): the document says so.
    received_on: Annotated[
        date | None, WithJsonSchema(blank_or({"type": "string", "format": "date"}))
    ] = Field(
        None,
        description="The date the requests arrived (YYYY-MM-DD, not after today: 409); each "
        "row's own received_on wins. Default: today",
    )
    file: Annotated[UploadedFile, WithJsonSchema({"type": "string", "pattern": CSV_TEXT})] = Field(
        description="The list: UTF-8 CSV text (comma, semicolon or tab; BOM and CRLF "
        "accepted) whose first line names a user_id and/or identity (or email) column, "
        "optionally received_on and reference; at most 10,000 subjects. Sent as a file part "
        "(curl -F file=@list.csv) or as a text part."
    )
    reference: str | SkipJsonSchema[None] = Field(
        None,
        json_schema_extra={"maxLength": MAX_REFERENCE_LENGTH, "pattern": STORABLE},
        description="Your ticket id",
    )

    @field_validator("environment_id", mode="before")
    @classmethod
    def _environment(cls, value: Any) -> Any:
        try:
            return whole_number("environment_id", 1, error=Refused)(value)
        except Refused:
            raise Refused("Send 'environment_id', the id of the Heap environment.") from None

    @field_validator("received_on", mode="before")
    @classmethod
    def _received(cls, value: Any) -> Any:
        text = value.strip() if isinstance(value, str) else value
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise Refused("'received_on' must be a date in the form YYYY-MM-DD.") from None

    @field_validator("file", mode="before")
    @classmethod
    def _file(cls, value: Any) -> Any:
        if isinstance(value, FileStorage):
            return UploadedFile(value.filename, value.read())  # bounded by MAX_CONTENT_LENGTH
        if isinstance(value, str):
            # A text part reaches the desk decoded, unreadable bytes replaced by U+FFFD.
            if "\ufffd" in value:
                raise Refused(NOT_UTF8)
            return UploadedFile(None, value.encode("utf-8"))
        raise Refused("Send the CSV as the multipart field 'file'.")

    @field_validator("reference", mode="before")
    @classmethod
    def _reference(cls, value: Any) -> Any:
        message = f"The reference must be at most {MAX_REFERENCE_LENGTH} characters."
        return _at_most(value, MAX_REFERENCE_LENGTH, message)

    @model_validator(mode="wrap")
    @classmethod
    def _missing(cls, data: Any, handler):
        # A missing field, in the words the upload always used.
        try:
            return handler(data)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            if first["type"] == "missing" and first["loc"] == ("environment_id",):
                raise Refused("Send 'environment_id', the id of the Heap environment.") from None
            if first["type"] == "missing" and first["loc"] == ("file",):
                raise Refused("Send the CSV as the multipart field 'file'.") from None
            raise


class ApproveBody(StrictBody):
    """Optional: the hashes you checked; a mismatch refuses the approval (409)."""

    model_config = ConfigDict(
        openapi_extra={"required": False, "description": "Optional; no body approves as is"}
    )

    sha256: str | SkipJsonSchema[None] = Field(
        None,
        json_schema_extra={"pattern": STORABLE},
        description="The file's SHA-256 as you checked it: it must match, if given",
    )
    manifest_sha256: str | SkipJsonSchema[None] = Field(
        None,
        json_schema_extra={"pattern": STORABLE},
        description="The manifest's SHA-256 as you checked it (GET /batches/{batch_id} → "
        "manifest.sha256): it must match, if given",
    )
    checked_preview: bool | SkipJsonSchema[None] = Field(
        None,
        description="true: you checked the preview. Required (400 otherwise) when the batch "
        f"sends more than {CHECKED_PREVIEW_ABOVE:,} subjects",
    )

    @field_validator("sha256", "manifest_sha256", mode="before")
    @classmethod
    def _strings(cls, value: Any, info: ValidationInfo) -> Any:
        return _text(info.field_name)(value)

    @field_validator("checked_preview", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, bool):
            raise Refused("'checked_preview' must be true or false.")
        return value


def _reason(message: str):
    """A reason as sent: a string of at most MAX_REASON_LENGTH characters (`message` else)."""

    def check(value: Any) -> Any:
        return _at_most(_text("reason")(value), MAX_REASON_LENGTH, message)

    return check


class RejectBody(StrictBody):
    reason: str = Field(
        json_schema_extra=REASON_SCHEMA, description="Why (shown to the uploader, audited)"
    )

    @field_validator("reason", mode="before")
    @classmethod
    def _reason(cls, value: Any) -> Any:
        return _reason(f"Give the reason for rejecting (1 to {MAX_REASON_LENGTH} characters).")(
            value
        )


class CancelBody(StrictBody):
    reason: str = Field(
        json_schema_extra=REASON_SCHEMA, description="Why it is withdrawn (stored, audited)"
    )

    @field_validator("reason", mode="before")
    @classmethod
    def _reason(cls, value: Any) -> Any:
        return _reason(
            f"Give the reason for cancelling (1 to {MAX_REASON_LENGTH} characters); "
            "nothing changed."
        )(value)


class ExtendBody(StrictBody):
    """Art. 12(3): up to two more months, with the reason and the date the subject was told."""

    months: Literal[1, 2] = Field(description="1 or 2 (at most 2 in total)")
    reason: str = Field(
        json_schema_extra=REASON_SCHEMA,
        description="Why more time is needed",
    )
    subject_informed_on: date = Field(
        description="When the subject was told: on or after the day the request arrived, "
        "within its first month, and not after today (409 otherwise)"
    )

    @field_validator("months", mode="before")
    @classmethod
    def _months(cls, value: Any) -> Any:
        if isinstance(value, bool) or value not in (1, 2):
            raise Refused("'months' must be 1 or 2.")
        return int(value)

    @field_validator("reason", mode="before")
    @classmethod
    def _reason(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise Refused("'reason' must be a string.")
        return _at_most(
            value, MAX_REASON_LENGTH, f"The reason must be at most {MAX_REASON_LENGTH} characters."
        )

    @field_validator("subject_informed_on", mode="before")
    @classmethod
    def _informed(cls, value: Any) -> Any:
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise Refused("'subject_informed_on' must be a date in the form YYYY-MM-DD.") from None


def _lookup_value(kind: str, value: Any) -> Any:
    """The identifier checked as the lookup checks it, refused in its words."""
    from webapp.erasure import lookup  # the service's own check, so the message is its

    if value is None:
        return None
    if kind == "identity" and isinstance(value, str) and len(value) > MAX_IDENTITY_LENGTH:
        # The lookup strips spaces first; counted as sent, the document's maxLength holds.
        raise Refused(
            f"That identity cannot be looked up: identity is longer than {MAX_IDENTITY_LENGTH} "
            "characters."
        )
    try:
        lookup.fingerprint_for(kind, value)
    except lookup.LookupRefused as error:
        raise Refused(str(error)) from None
    return value


class LookupQuery(BaseModel):
    """Exactly one of identity or user_id."""

    environment_id: Annotated[int, Field(ge=0, le=MAX_ID)] | SkipJsonSchema[None] = Field(
        None, description="Only this environment (0: all)"
    )
    identity: str | SkipJsonSchema[None] = Field(
        None,
        json_schema_extra={"minLength": 1, "maxLength": MAX_IDENTITY_LENGTH, "pattern": FILLED},
        description="The identity, exactly (Heap is case-sensitive)",
    )
    # Kept as sent (the lookup reads "0042" as 42); documented as the number it must be.
    user_id: (
        Annotated[
            str,
            WithJsonSchema(
                {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": MAX_USER_ID,
                    "description": "The Heap user_id (digits only, 0 to 2^53-1)",
                }
            ),
        ]
        | SkipJsonSchema[None]
    ) = Field(None, description="The Heap user_id (0 to 2^53-1)")

    @model_validator(mode="before")
    @classmethod
    def _known_parameters(cls, values: Any) -> Any:
        # A stray `user_id[x]=…` must not pass for a lookup by identity alone: a lookup names
        # its person exactly, so any parameter the document does not state is refused.
        if isinstance(values, Mapping):
            unknown = sorted(str(key) for key in values if key not in cls.model_fields)
            if unknown:
                raise QueryRefused(f"Unknown parameter(s): {', '.join(unknown)}.")
        return values

    @field_validator("environment_id", mode="before")
    @classmethod
    def _environment(cls, value: Any) -> Any:
        return whole_number("environment_id", 0, error=QueryRefused)(value) if value != "" else None

    @field_validator("identity", "user_id", mode="before")
    @classmethod
    def _identifier(cls, value: Any, info: ValidationInfo) -> Any:
        return _lookup_value(info.field_name, value)


def lookup_parameter() -> dict:
    """The lookup's query as the document states it: one object, its properties sent as query
    arguments (style form, explode), holding exactly one of identity and user_id (oneOf),
    which separate parameters cannot say. flask-openapi3 writes each field as a parameter of
    its own; api.document() puts this one in their place."""
    properties = LookupQuery.model_json_schema()["properties"]
    for prop in properties.values():
        prop.pop("default", None)
    return {
        "name": "subject",
        "in": "query",
        "required": True,
        "style": "form",
        "explode": True,
        "description": "Exactly one of `identity` and `user_id`, optionally `environment_id`, "
        "each sent as a query argument of its own: ?identity=ann@example.org",
        "schema": {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
            # Inside allOf, so a client generator still sees one object of three properties
            # (openapi-python-client makes a model of it, not an untyped union).
            "allOf": [{"oneOf": [{"required": ["identity"]}, {"required": ["user_id"]}]}],
        },
    }


# ---------------------------------------------------------------- answers
class Counts(BaseModel):
    rows: int
    valid: int
    malformed: int
    duplicate: int
    already_requested: int
    excluded: int = Field(description="Rows its uploader took out before approval")


class Manifest(BaseModel):
    """What an approval covers: the subjects to send, by count and SHA-256 of their sorted
    fingerprints."""

    count: int | None
    sha256: str | None


class Progress(BaseModel):
    complete: int
    total: int


class BatchSummary(BaseModel):
    """A batch as lists show it."""

    id: int
    environment_id: int
    environment: str | None
    state: BatchState
    source: str = Field(description="web or api")
    filename: str | None
    reference: str | None
    sha256: str = Field(description="SHA-256 of the uploaded file")
    received_on: date | None
    counts: Counts
    manifest: Manifest
    progress: Progress
    created_at: str | None
    approved_at: str | None
    submitted_at: str | None
    completed_at: str | None
    next_attempt_at: str | None
    last_error: str | None


class BatchList(BaseModel):
    batches: list[BatchSummary]
    page: int
    pages: int
    total: int


# The evidence downloads' operation ids (evidence_api.py), the targets of the upload's links.
REPORT_CSV_OPERATION = "get_batch_report"
CERTIFICATE_PDF_OPERATION = "get_batch_certificate"
EVIDENCE_ZIP_OPERATION = "get_batch_evidence"


def _link(operation_id: str, description: str) -> dict:
    return {
        "operationId": operation_id,
        "parameters": {"batch_id": "$response.body#/id"},
        "description": description,
    }


RETRY_LINK = _link("retry_batch", "Send it again now, once it failed or waits for a retry")


class People(BaseModel):
    uploaded_by: str | None
    approved_by: str | None
    rejected_by: str | None
    cancelled_by: str | None


class Deadlines(BaseModel):
    """Art. 12(3) deadlines of the deletions the batch still owes."""

    earliest_due_on: date | None
    latest_due_on: date | None
    overdue: int
    due_within_7_days: int
    days_left: int | None
    urgency: str | None


class HeapRequestView(BaseModel):
    """One request to Heap (≤ 10,000 subjects) and every deletion_request_id it was given."""

    id: int
    chunk_index: int
    subjects: int
    state: str
    deletion_request_ids: list[str]
    status: str | None = Field(description="Heap's status of the deletion request")
    stale: bool
    attempts: int
    last_polled_at: str | None
    next_attempt_at: str | None
    last_error: str | None
    completed_at: str | None


class BatchDetail(BatchSummary):
    """A batch with its people, progress, deadlines and Heap requests."""

    model_config = ConfigDict(openapi_extra={"links": {"RetryBatch": RETRY_LINK}})

    people: People
    rejection_reason: str | None
    approved_manifest_sha256: str | None
    reapproval_reason: str | None
    cancelled_at: str | None
    cancel_reason: str | None
    subject_states: dict[str, int]
    deadlines: Deadlines
    heap_requests: list[HeapRequestView]


class Problem(BaseModel):
    row: int
    classification: str = Field(description="malformed, duplicate, already_requested or excluded")
    reason: str


class RowWarning(BaseModel):
    row: int
    warning: str


class BatchCreated(BatchSummary):
    """The new batch, awaiting approval, with what the desk found in the file."""

    model_config = ConfigDict(
        openapi_extra={
            "links": {
                "GetBatch": _link("get_batch", "The batch, as it goes on"),
                "ApproveBatch": _link("approve_batch", "Approve it (another officer)"),
                "RejectBatch": _link("reject_batch", "Reject it with a reason"),
                "CancelBatch": _link("cancel_batch", "Withdraw it before submission"),
                "BatchReport": _link(REPORT_CSV_OPERATION, "Its rows as CSV"),
                "BatchCertificate": _link(CERTIFICATE_PDF_OPERATION, "Its deletion certificate"),
                "BatchEvidence": _link(EVIDENCE_ZIP_OPERATION, "Its evidence pack"),
                "RetryBatch": RETRY_LINK,
            }
        }
    )

    problems: list[Problem] = Field(description="The first 100 rows that will not be sent")
    problems_total: int
    ignored_columns: list[str] = Field(
        description="Header names other than user_id, identity (email), received_on and "
        "reference: not read"
    )
    warnings: list[RowWarning] = Field(description="The first 100 rows sent, with a caution")


class SubjectHeapRequest(BaseModel):
    id: int
    chunk_index: int
    state: str
    status: str | None
    deletion_request_ids: list[str]


class SubjectView(BaseModel):
    """One row that held the subject, with its batch, deadline and Heap request."""

    subject_id: int
    batch_id: int
    batch_state: BatchState
    environment_id: int
    environment: str | None
    row: int
    kind: str | None = Field(description="user_id or identity")
    classification: str
    problem: str | None
    state: str
    received_on: date | None
    due_on: date | None
    extension_months: int | None
    subject_informed_on: date | None
    extension_recorded_on: date | None
    extended_late_on: date | None = Field(
        description="Set when the extension came after the first month had ended"
    )
    submitted_at: str | None
    completed_at: str | None
    purged: bool
    heap_request: SubjectHeapRequest | None


def _subject_link(operation_id: str, description: str) -> dict:
    return {
        "operationId": operation_id,
        "parameters": {"subject_id": "$response.body#/results/0/subject_id"},
        "description": description,
    }


class LookupResult(BaseModel):
    """Every row, in every batch, that held the subject (by fingerprint: works after purge)."""

    model_config = ConfigDict(
        openapi_extra={
            "links": {
                "GetSubject": _subject_link("get_subject", "The first row found"),
                "ExtendDeadline": _subject_link("extend_subject_deadline", "Extend its deadline"),
                "SubjectReceipt": _subject_link("subject_receipt_zip", "Its receipt"),
            }
        }
    )

    deleted: bool = Field(description="True when a row of the subject is complete")
    results: list[SubjectView]
