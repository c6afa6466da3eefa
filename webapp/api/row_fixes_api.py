"""Fixing rows of a batch awaiting approval over the API: exclude a valid row, correct a
malformed one (issue 15; the same service as the batch page's forms)."""

from __future__ import annotations

from typing import Any, Literal

from flask_login import current_user
from pydantic import BaseModel, ConfigDict, Field, field_validator

from webapp.accounts.access import role_required
from webapp.api import heap_fields
from webapp.api.batch_models import FILLED, BatchDetail, Refused, StrictBody
from webapp.api.batches_api import STEP_ERRORS, _step
from webapp.api.blueprint import api
from webapp.api.common import checked
from webapp.api.schemas import STORABLE, ErrorBody, Id
from webapp.erasure import row_fixes
from webapp.models import Role

RULES = (
    "Role: officer or admin; the batch's uploader or an admin (403 otherwise), while the batch "
    "awaits approval (409 otherwise). The batch's counts and manifest are recomputed and the "
    "change audited; an approval must then cover the new manifest. "
)


class RowPath(BaseModel):
    batch_id: Id = Field(description="The batch's id")
    row_number: Id = Field(description="The row's number (1 is the first line after the header)")


class ExcludeRowBody(StrictBody):
    reason: str = Field(
        json_schema_extra={
            "minLength": 1,
            "maxLength": row_fixes.MAX_EXCLUSION_REASON,
            "pattern": FILLED,
        },
        description="Why the row is not sent (kept with the row; only its length is audited)",
    )

    @field_validator("reason", mode="before")
    @classmethod
    def _string(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise Refused("'reason' must be a string.")
        return value


def _value_by_kind(schema: dict[str, Any]) -> None:
    """State the upload's rule for each kind of value (a user_id's digits, an identity's
    characters and placeholders), so a schema-valid correction is one the desk accepts."""
    [user_id_text] = [
        choice for choice in heap_fields.USER_ID["anyOf"] if choice["type"] == "string"
    ]
    schema["additionalProperties"] = False  # StrictBody's rule, kept with this model's own
    schema["oneOf"] = [
        {"properties": {"kind": {"const": "user_id"}, "value": user_id_text}},
        {"properties": {"kind": {"const": "identity"}, "value": heap_fields.UNIQUE_IDENTITY}},
    ]


class CorrectRowBody(StrictBody):
    model_config = ConfigDict(json_schema_extra=_value_by_kind)

    kind: Literal["user_id", "identity"] = Field(description="What the corrected value is")
    value: str = Field(
        json_schema_extra={"minLength": 1, "maxLength": 1000, "pattern": STORABLE},
        description="The corrected identifier (checked by the upload's rules)",
    )

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> Any:
        if value not in ("user_id", "identity"):
            raise Refused("'kind' must be 'user_id' or 'identity'.")
        return value

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise Refused("'value' must be a string.")
        if len(value) > 1000:
            raise Refused("'value' is longer than any identifier Heap takes.")
        return value


@api.post(
    "/batches/<int:batch_id>/rows/<int:row_number>/exclude",
    operation_id="exclude_batch_row",
    responses={200: BatchDetail, 403: ErrorBody, **STEP_ERRORS},
    description=RULES + "400: no reason, or one longer than 300 characters. 409: the row is "
    "not valid (only a row that would be sent can be excluded).",
)
@role_required(Role.OFFICER)
@checked()
def rows_exclude(path: RowPath, body: ExcludeRowBody):
    """Exclude a valid row of a batch awaiting approval, with a reason"""
    return _step(
        path.batch_id,
        lambda session: row_fixes.exclude_row(
            session,
            actor=current_user.email,
            batch_id=path.batch_id,
            row_number=path.row_number,
            reason=body.reason,
        ),
    )


@api.post(
    "/batches/<int:batch_id>/rows/<int:row_number>/correct",
    operation_id="correct_batch_row",
    responses={200: BatchDetail, 403: ErrorBody, **STEP_ERRORS},
    description=RULES + "The row is then classified as the upload would have: valid, a "
    "duplicate of another row, or already requested. 400: the value breaks the row rules "
    "(the message says which). 409: the row is not malformed.",
)
@role_required(Role.OFFICER)
@checked()
def rows_correct(path: RowPath, body: CorrectRowBody):
    """Correct a malformed row's identifier in a batch awaiting approval"""
    return _step(
        path.batch_id,
        lambda session: row_fixes.correct_row(
            session,
            actor=current_user.email,
            batch_id=path.batch_id,
            row_number=path.row_number,
            kind=body.kind,
            value=body.value,
        ),
    )
