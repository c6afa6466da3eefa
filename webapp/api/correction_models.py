"""The corrections API's declarations: bodies, query, path and answers (see corrections_api).

The options every correction body takes (environment_id, override_reason, confirm_warnings,
preview) are validated here with the desk's messages. The Heap fields (identity, user_id,
properties, bulk lists, …) are declared with Heap's types and limits for the document and
checked by the corrections domain (webapp.corrections.plans), which names the row and the rule
broken (422 "invalid"); so they are taken here as sent.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from webapp.api import heap_fields as fields
from webapp.api.batch_models import REASON_SCHEMA, RejectBody
from webapp.api.common import document_only
from webapp.api.schemas import STORABLE, Id, blank_or, whole
from webapp.models import MAX_ID, CallState, CorrectionOperation, CorrectionState

ENV_ID = "'environment_id' must be the environment's numeric id."
FLAGS = "'confirm_warnings' and 'preview' must be true or false."
MAX_REASON = 2000  # webapp.corrections.service.MAX_REASON


# ----- the options of every correction body ------------------------------------------------
def _environment_id(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 3.0 is the whole number 3 in JSON (and JSON Schema)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise ValueError(ENV_ID)
    return value


def _reason(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise ValueError("'override_reason' must be a string.")
    if isinstance(value, str) and len(value) > MAX_REASON:
        # The service strips spaces first; counted as sent, the documented maxLength holds.
        raise ValueError(f"The override reason is over {MAX_REASON} characters.")
    return value


def _flag(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError(FLAGS)
    return value


# Field before BeforeValidator: the bounds stay minimum/maximum in the schema (after it,
# pydantic 2.14 writes them as "ge"/"le", which JSON Schema does not know).
EnvironmentId = Annotated[
    int,
    Field(ge=1, le=MAX_ID, description="The Heap environment's id"),
    BeforeValidator(_environment_id),
]
Flag = Annotated[bool, BeforeValidator(_flag)]


def heap(schema: dict, description: str):
    """A Heap field: declared with Heap's type and limits, checked by the corrections domain."""
    return Annotated[Any, WithJsonSchema(schema), Field(None, description=description)]


TEXT = {"type": "string", "pattern": STORABLE}


class CorrectionOptions(BaseModel):
    """What every correction body takes besides Heap's fields."""

    # Unknown fields are refused by the domain, by name ("Unknown field(s): colour.").
    model_config = ConfigDict(extra="allow")

    environment_id: EnvironmentId
    # null and blank mean "no reason", as leaving it out does.
    override_reason: Annotated[
        str | None,
        BeforeValidator(_reason),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "maxLength": MAX_REASON, "pattern": STORABLE},
                    {"type": "null"},
                ]
            }
        ),
        Field(description="Why to send past the re-ingestion guard (a subject deleted before)"),
    ] = None
    confirm_warnings: Flag = Field(False, description="Send despite identify warnings")
    preview: Flag = Field(False, description="Only validate and show the calls (200)")
    app_id: heap(TEXT, "Optional: the environment's own app id (any other is refused)")

    @model_validator(mode="before")
    @classmethod
    def _environment_given(cls, data: Any) -> Any:
        if isinstance(data, dict) and "environment_id" not in data:
            raise ValueError(ENV_ID)
        return _whole_ids(data)


# Ids the document declares as integers, which JSON Schema (and JSON) count the same whether
# written 12 or 12.0; the corrections domain, strict for every caller, takes only the first.
WHOLE_IDS = ("user_id", "account_id")


def _whole_ids(data: Any) -> Any:
    """`data` with the ids written as whole floats (12.0) as ints, in bulk items too."""

    def whole(item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        return {
            key: int(value)
            if key in WHOLE_IDS and isinstance(value, float) and value.is_integer()
            else value
            for key, value in item.items()
        }

    if not isinstance(data, dict):
        return data
    data = whole(data)
    for key in ("events", "accounts"):
        if isinstance(data.get(key), list):
            data[key] = [whole(item) for item in data[key]]
    return data


def _schema(*required: str, rules: tuple[dict, ...] = ()) -> Any:
    extra = {"additionalProperties": False, "required": ["environment_id", *required]}
    return document_only(extra | ({"allOf": list(rules)} if rules else {}))


class IdentifyBody(CorrectionOptions):
    """Identify an anonymous Heap user_id as an identity."""

    model_config = ConfigDict(
        title="IdentifyCorrection", json_schema_extra=_schema("user_id", "identity")
    )
    user_id: heap(fields.USER_ID, "The anonymous user's numeric id (0 to 2^53-1)")
    identity: heap(
        fields.UNIQUE_IDENTITY, "The identity (e.g. an e-mail); not a placeholder like 'null'"
    )
    timestamp: heap(fields.optional(fields.TIMESTAMP), "When, ISO 8601 with a zone")


def _bulk_item(name: str, schema: dict) -> dict:
    return {
        "type": "object",
        "properties": {name: schema, "properties": fields.properties(1)},
        "required": [name, "properties"],
        "additionalProperties": False,
    }


class UserPropertiesBody(CorrectionOptions):
    """Single: identity + properties. Bulk: users (any size; sent 1,000 per request)."""

    model_config = ConfigDict(
        title="UserPropertiesCorrection",
        json_schema_extra=_schema(
            rules=(fields.single_or_bulk(["identity", "properties"], "users"),)
        ),
    )
    identity: heap(fields.IDENTITY, "Single: the user's identity")
    properties: heap(fields.properties(1), "Single: the properties to set (text or numbers)")
    users: heap(
        fields.bulk(_bulk_item("identity", fields.IDENTITY), "Bulk: one object per user"),
        "Bulk: users and their properties",
    )


class AccountPropertiesBody(CorrectionOptions):
    """Single: account_id + properties. Bulk: accounts (any size)."""

    model_config = ConfigDict(
        title="AccountPropertiesCorrection",
        json_schema_extra=_schema(
            rules=(fields.single_or_bulk(["account_id", "properties"], "accounts"),)
        ),
    )
    account_id: heap(fields.ACCOUNT_ID, "Single: the account's id")
    properties: heap(fields.properties(1), "Single: the properties to set (text or numbers)")
    accounts: heap(
        fields.bulk(_bulk_item("account_id", fields.ACCOUNT_ID), "Bulk: one object per account"),
        "Bulk: accounts and their properties",
    )


class LinkAccountBody(CorrectionOptions):
    """Link a user to an account (the environment's Account ID property)."""

    model_config = ConfigDict(
        title="LinkAccountCorrection", json_schema_extra=_schema("identity", "account_id")
    )
    identity: heap(fields.IDENTITY, "The user's identity")
    account_id: heap(fields.ACCOUNT_ID, "The account to link the user to")


EVENT_FIELDS = ("identity", "user_id", "properties", "timestamp", "session_id", "idempotency_key")


class EventsBody(CorrectionOptions):
    """Single: event + exactly one of identity or user_id (and optional user_properties).
    Bulk: events (any size; sent 1,000 per request)."""

    model_config = ConfigDict(
        title="EventsCorrection",
        json_schema_extra=_schema(
            rules=(
                fields.single_or_bulk(
                    ["event"],
                    "events",
                    others=(*EVENT_FIELDS, "user_properties"),
                    rules=(fields.ONE_SUBJECT, fields.PROPERTIES_NEED_IDENTITY),
                ),
            )
        ),
    )
    event: heap(fields.EVENT_NAME, "Single: the event's name")
    identity: heap(fields.optional(fields.IDENTITY), "Single: the user's identity (or user_id)")
    user_id: heap(fields.optional(fields.USER_ID), "Single: the user's numeric id (or identity)")
    properties: heap(fields.optional(fields.properties()), "Single: the event's properties")
    timestamp: heap(fields.optional(fields.TIMESTAMP), "Single: when, ISO 8601 with a zone")
    session_id: heap(fields.optional(fields.SHORT_TEXT), "Single: Heap's session id")
    idempotency_key: heap(
        fields.optional(fields.SHORT_TEXT),
        "Single: Heap's idempotency key (the desk sets one if absent)",
    )
    user_properties: heap(
        fields.optional(fields.properties()),
        "Single, with identity: user properties to set as well",
    )
    events: heap(fields.bulk(fields.EVENT, "Bulk: one object per event"), "Bulk: the events")


BODIES: dict[str, type[CorrectionOptions]] = {
    "identify": IdentifyBody,
    "user-properties": UserPropertiesBody,
    "account-properties": AccountPropertiesBody,
    "link-account": LinkAccountBody,
    "events": EventsBody,
}
OPTIONS = tuple(CorrectionOptions.model_fields)  # not passed to the domain (but app_id is)


# ----- list query and path -----------------------------------------------------------------
def _operation(value: Any) -> Any:
    if isinstance(value, str) and value not in {o.value for o in CorrectionOperation}:
        raise ValueError(f"Unknown operation '{value}'.")
    return value


def _state(value: Any) -> Any:
    if isinstance(value, str) and value not in {s.value for s in CorrectionState}:
        raise ValueError(f"Unknown state '{value}'.")
    return value


def _day(name: str):
    def check(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(f"'{name}' must be a date (YYYY-MM-DD).") from None
        return value

    # Sent empty, it is absent (_blank_is_absent): the document says so.
    schema = blank_or({"type": "string", "format": "date"})
    return Annotated[date, BeforeValidator(check), WithJsonSchema(schema)]


class CorrectionListQuery(BaseModel):
    # No `| None` unions: a query value is never null, and a union would name its branches
    # in the message ("'before.function-after[…]'"); absent is the default.
    model_config = ConfigDict(extra="ignore", json_schema_extra=document_only())

    operation: Annotated[CorrectionOperation, BeforeValidator(_operation)] = Field(
        None, description="Only this operation"
    )
    state: Annotated[CorrectionState, BeforeValidator(_state)] = Field(
        None, description="Only corrections in this state (e.g. awaiting_approval)"
    )
    actor: str = Field(
        None, max_length=320, pattern=STORABLE, description="Only this officer's (e-mail)"
    )
    since: _day("since") = Field(None, description="From this date (UTC)")
    until: _day("until") = Field(None, description="To this date (UTC), inclusive")
    before: whole("before") = Field(
        None, description="Page: corrections with a smaller id (the answer's next_before)"
    )
    limit: whole("limit") = Field(50, description="Page size (at most 200 are answered)")

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value != ""}
        return data


class CorrectionPath(BaseModel):
    correction_id: Id


# ----- answers -----------------------------------------------------------------------------
class Warning_(BaseModel):
    model_config = ConfigDict(title="CorrectionWarning")
    code: str
    message: str


class CallOut(BaseModel):
    """One Heap request of a correction."""

    model_config = ConfigDict(title="CorrectionCall")
    position: int
    operation: str = Field(description="Heap's API operation, e.g. identify, bulk_track")
    url: str
    items: int
    state: CallState
    heap_status: int | None
    heap_message: str | None
    attempts: int
    body_sha256: str
    body: dict[str, Any] | SkipJsonSchema[None] = Field(
        None, description="The JSON sent (officers and admins only)"
    )


class CorrectionSummary(BaseModel):
    """A correction as listed."""

    id: int
    operation: CorrectionOperation
    state: CorrectionState
    environment_id: int
    actor: str
    created_at: datetime
    completed_at: datetime | None
    items: int
    heap_status: int | None
    message: str | None = Field(description="Heap's answer, in its words")
    warnings: list[Warning_]
    warnings_confirmed: bool
    override_reason: str | None
    guarded_count: int
    attempts: int
    approval_required: bool = Field(
        description="The environment's policy asked a second officer to approve it"
    )
    decided_by: str | None = Field(description="Who approved, rejected or withdrew it")
    decided_at: datetime | None
    decision_reason: str | None = Field(description="Why it was rejected or withdrawn")


class CorrectionOut(CorrectionSummary):
    """One correction with its Heap requests."""

    model_config = ConfigDict(
        title="Correction",
        openapi_extra={
            "links": {
                "GetCorrection": {
                    "operationId": "get_correction",
                    "parameters": {"correction_id": "$response.body#/id"},
                    "description": "The correction, with the calls it made",
                },
                "RetryCorrection": {
                    "operationId": "retry_correction",
                    "parameters": {"correction_id": "$response.body#/id"},
                    "description": "Send again the calls Heap has not accepted",
                },
            }
        },
    )
    calls: list[CallOut]
    subject_fingerprints: list[str]


class CorrectionRejectBody(RejectBody):
    """Why the correction is rejected (another officer) or withdrawn (its author)."""

    model_config = ConfigDict(title="RejectCorrection")
    reason: str = Field(
        json_schema_extra=REASON_SCHEMA, description="Why (kept with the correction, audited)"
    )


class CorrectionList(BaseModel):
    corrections: list[CorrectionSummary]
    next_before: int | None = Field(description="Pass as `before` for the next page; null: none")


class PreviewCall(BaseModel):
    operation: str
    method: str
    url: str
    body: dict[str, Any] | None


class PreviewWarning(BaseModel):
    code: str
    message: str
    needs_confirmation: bool


class Guard(BaseModel):
    refused: bool = Field(description="True: sending needs override_reason")
    message: str | None


class CorrectionPreview(BaseModel):
    """What would be sent ("preview": true); nothing is stored or sent."""

    operation: CorrectionOperation
    items: int
    calls: list[PreviewCall]
    warnings: list[PreviewWarning]
    guard: Guard
