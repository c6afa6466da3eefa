"""The API's shared declarations: the error body, ids, and how a refused input is answered.

Every API module declares its query, path, body and answer models with these (pydantic, which
SQLModel brings); flask-openapi3 validates requests with them and writes /api/v1/openapi.json
from them, so the document and the server cannot disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from flask import jsonify, make_response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from webapp.models import MAX_ID

# Text the desk refuses to store (NUL; lone surrogates are refused before validation): stated
# in the schema so a generated client or fuzzer knows it.
STORABLE = r"^[^\x00]*$"


class ErrorDetail(BaseModel):
    code: str = Field(description="What went wrong, for machines: invalid, not_found, conflict, …")
    message: str = Field(description="What went wrong, in plain language, for people")


class ErrorBody(BaseModel):
    """Every error answer: {"error": {"code", "message"}}."""

    model_config = ConfigDict(title="Error")
    error: ErrorDetail


# The answers every operation may give besides its own.
COMMON_ERRORS: dict[int, type[BaseModel]] = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody}


def whole_number(name: str, low: int = 1, high: int = MAX_ID, error: type[ValueError] = ValueError):
    """The desk's one check of a whole number sent as text: digits only (pydantic's lax mode
    would take "1.0"; spaces around are dropped), in [low, high], else `error` with the desk's
    message. Values that are not text are left to the field's type."""
    message = f"'{name}' must be a whole number from {low} to {high}."

    def check(value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            digits = text.isascii() and text.isdigit() and len(text) <= len(str(high))
            if not digits or not low <= int(text) <= high:
                raise error(message)
            return int(text)
        return value

    return check


def whole(name: str, low: int = 1, high: int = MAX_ID):
    """An int field in [low, high], checked by whole_number."""
    # The Field before the validator: after it, pydantic writes "ge"/"le" into the schema
    # instead of "minimum"/"maximum", and the bounds are lost from the document.
    return Annotated[int, Field(ge=low, le=high), BeforeValidator(whole_number(name, low, high))]


def blank_or(schema: dict) -> dict:
    """The document's schema of a query value that may also be sent empty (`?until=`): the
    desk takes an empty argument as absent, so the document must not call it invalid."""
    return {"anyOf": [schema, {"type": "string", "maxLength": 0}]}


Id = Annotated[int, Field(ge=1, le=MAX_ID, description="An id (1 to 2^31-1)")]


def aware_datetime(name: str):
    """An ISO 8601 date-time with a zone (pydantic alone would take "0.5" as Unix time)."""

    def check(value: Any) -> Any:
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"'{name}' must be an ISO 8601 time with a zone, e.g. 2026-01-31T00:00:00Z."
                ) from None
            if moment.tzinfo is None:
                raise ValueError(f"'{name}' needs a time zone, e.g. 2026-01-31T00:00:00Z.")
            return moment
        return value

    return Annotated[datetime, BeforeValidator(check)]


def plain_message(error: ValidationError) -> str:
    """The first problem, in the desk's words when a validator of ours said it."""
    first = error.errors(include_url=False)[0]
    location = ".".join(str(part) for part in first.get("loc", ()) if part != "__root__")
    if first.get("type") == "value_error" and "error" in first.get("ctx", {}):
        return str(first["ctx"]["error"])
    if first.get("type") == "missing":
        return f"Send '{location}'."
    return f"'{location}': {first.get('msg', 'not valid')}."


def validation_error(error: ValidationError):
    """flask-openapi3's hook: a refused input is a 400 with the desk's error body."""
    response = make_response(
        jsonify(error={"code": "bad_request", "message": plain_message(error)})
    )
    response.status_code = 400
    return response
