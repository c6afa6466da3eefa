"""The models of the batch and subject endpoints, and the decorator that validates with them.

Each request model is declared once: flask-openapi3 reads the view's annotations (`path`,
`query`, `form`, `body`) to write /api/v1/openapi.json, and `checked()` validates the request
with the same models inside the view, after role_required — so a request without a token is a
401, and one with the wrong role a 403, before its input is looked at — and answers a refusal
with the desk's plain message and the code these endpoints always used.

The multipart upload is read here too: flask-openapi3 would json.loads() every text field of a
form (reference "[]" became a list, "1e3" the number 1000.0), so the text fields reach the model
as they were sent.
"""

from __future__ import annotations

from datetime import date
from functools import wraps
from typing import Annotated, Any, Literal, get_type_hints

from flask import abort, request
from flask_openapi3 import FileStorage
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

from webapp.api.common import BadInput, json_body
from webapp.api.schemas import STORABLE, Id, plain_message
from webapp.erasure.batches import CHECKED_PREVIEW_ABOVE, MAX_REASON_LENGTH, MAX_REFERENCE_LENGTH
from webapp.errors import api_error
from webapp.heap.validation import MAX_IDENTITY_LENGTH, MAX_USER_ID
from webapp.models import MAX_ID, BatchState


# ---------------------------------------------------------------- refusals and validation
class Refused(ValueError):
    """A value an endpoint refuses; `code` is the error code the answer carries."""

    code = "invalid"


class QueryRefused(Refused):
    """A refused query argument: these endpoints always answered them as 'bad_request'."""

    code = "bad_request"


def _refusal(error: ValidationError, default_code: str) -> tuple[str, str]:
    first = error.errors(include_url=False)[0]
    cause = first.get("ctx", {}).get("error")
    return plain_message(error), getattr(cause, "code", default_code)


def _form_data(model: type[BaseModel]) -> dict:
    """The multipart fields the model declares, as sent (files from request.files)."""
    data: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key in request.files:
            data[key] = request.files[key]
        elif key in request.form:
            data[key] = request.form[key]
    return data


def checked(*, optional_body: bool = False):
    """Validate the view's annotated `path`, `query`, `form` and `body` models in the view.

    Put it under role_required. A refused input is a 400 whose code is the refusal's
    ('invalid' unless a validator says otherwise); a non-multipart request to a form
    endpoint is a 415, and a path id out of range a 404 (as one past MAX_ID, which no route
    matches). `optional_body`: an empty body counts as {}.
    """

    def decorator(view):
        hints = get_type_hints(view)
        models = {part: hints.get(part) for part in ("path", "query", "form", "body")}

        @wraps(view)
        def wrapped(**kwargs):
            try:
                if models["path"] is not None:
                    names = models["path"].model_fields
                    values = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
                    try:
                        kwargs["path"] = models["path"].model_validate(values)
                    except ValidationError:
                        abort(404)  # id 0: no such thing, as for an id past the range
                if models["query"] is not None:
                    kwargs["query"] = models["query"].model_validate(request.args.to_dict())
                if models["form"] is not None:
                    if request.mimetype != "multipart/form-data":
                        return api_error(
                            415,
                            "Send the upload as multipart/form-data: the CSV as 'file', with "
                            "'environment_id' and optionally 'received_on' and 'reference'.",
                            "unsupported_media_type",
                        )
                    kwargs["form"] = models["form"].model_validate(_form_data(models["form"]))
                if models["body"] is not None:
                    raw = {} if optional_body and not request.get_data() else json_body()
                    kwargs["body"] = models["body"].model_validate(raw)
            except BadInput as error:
                return api_error(400, str(error), "invalid")
            except ValidationError as error:
                message, code = _refusal(error, "invalid")
                return api_error(400, message, code)
            return view(**kwargs)

        # flask-openapi3: document the models, but leave their validation to `wrapped`.
        wrapped.__delay_validate_request__ = True
        return wrapped

    return decorator


# ---------------------------------------------------------------- field helpers
def _whole(name: str, low: int, high: int = MAX_ID, error: type[Refused] = QueryRefused):
    """A whole number written with digits only, in [low, high], refused in the desk's words."""

    def check(value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            digits = text.isascii() and text.isdigit() and len(text) <= len(str(high))
            if not digits or not low <= int(text) <= high:
                raise error(f"'{name}' must be a whole number from {low} to {high}.")
            return int(text)
        return value

    return check


def _text(name: str):
    def check(value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise Refused(f"'{name}' must be a string.")
        return value

    return check


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
        return _whole("environment_id", 0)(value) if value != "" else None

    @field_validator("page", mode="before")
    @classmethod
    def _page(cls, value: Any) -> Any:
        return _whole("page", 1)(value) if value != "" else 1

    @field_validator("per_page", mode="before")
    @classmethod
    def _per_page(cls, value: Any) -> Any:
        return _whole("per_page", 1)(value) if value != "" else 25


class UploadForm(BaseModel):
    """multipart/form-data: the CSV and what the batch is for."""

    environment_id: int = Field(
        ge=1, le=MAX_ID, description="The id of the Heap environment the list belongs to"
    )
    received_on: date | SkipJsonSchema[None] = Field(
        None,
        description="The date the requests arrived (YYYY-MM-DD, not in the future); each "
        "row's own received_on wins. Default: today",
    )
    file: FileStorage = Field(
        description="The list: a UTF-8 CSV (comma, semicolon or tab; BOM and CRLF accepted) "
        "with a user_id and/or identity (or email) column, optional received_on and reference"
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
            return _whole("environment_id", 1, error=Refused)(value)
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


class ApproveBody(BaseModel):
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


# Text with something besides white space (the services strip it), and no NUL.
FILLED = r"^[^\x00]*[^\x00\s][^\x00]*$"
REASON_SCHEMA = {"minLength": 1, "maxLength": MAX_REASON_LENGTH, "pattern": FILLED}


class RejectBody(BaseModel):
    reason: str = Field(
        json_schema_extra=REASON_SCHEMA, description="Why (shown to the uploader, audited)"
    )

    @field_validator("reason", mode="before")
    @classmethod
    def _string(cls, value: Any) -> Any:
        return _text("reason")(value)


class CancelBody(RejectBody):
    reason: str = Field(
        json_schema_extra=REASON_SCHEMA, description="Why it is withdrawn (stored, audited)"
    )


class ExtendBody(BaseModel):
    """Art. 12(3): up to two more months, with the reason and the date the subject was told."""

    months: Literal[1, 2] = Field(description="1 or 2 (at most 2 in total)")
    reason: str = Field(
        json_schema_extra=REASON_SCHEMA,
        description="Why more time is needed",
    )
    subject_informed_on: date = Field(
        description="When the subject was told (within the first month)"
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
        return value

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

    @field_validator("environment_id", mode="before")
    @classmethod
    def _environment(cls, value: Any) -> Any:
        return _whole("environment_id", 0)(value) if value != "" else None

    @field_validator("identity", "user_id", mode="before")
    @classmethod
    def _identifier(cls, value: Any, info: ValidationInfo) -> Any:
        return _lookup_value(info.field_name, value)


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
