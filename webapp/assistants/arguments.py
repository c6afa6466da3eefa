"""Each tool's arguments as a pydantic model: the typed input schema assistants are shown, and
the validation every call passes before any domain code runs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    model_validator,
)

from webapp.erasure.intake import MAX_ROWS
from webapp.models import MAX_ID, BatchState

MAX_IDENTIFIER_LENGTH = 1000
MAX_REFERENCE_LENGTH = 255
MAX_REASON_LENGTH = 2000

Id = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]


def _number_as_text(value: Any) -> Any:
    # A user_id is a number to Heap; assistants send it either way.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Identifier = Annotated[str, Field(min_length=1, max_length=MAX_IDENTIFIER_LENGTH, pattern=r"\S")]
UserId = Annotated[
    str,
    BeforeValidator(_number_as_text),
    Field(min_length=1, max_length=MAX_IDENTIFIER_LENGTH, pattern=r"\S"),
]
CorrectionOperation = Literal[
    "identify", "user_properties", "account_properties", "link_account", "track"
]


class Arguments(BaseModel):
    """No argument the tool does not name is accepted (a typo would otherwise be ignored)."""

    model_config = ConfigDict(extra="forbid")


class NoArguments(Arguments):
    pass


class LookupArguments(Arguments):
    environment_id: Id = Field(description="The Heap environment to search (see list_batches).")
    identity: Identifier | None = Field(None, description="The person's identity (e-mail).")
    user_id: UserId | None = Field(None, description="The person's Heap user_id.")

    @model_validator(mode="after")
    def _one_identifier(self) -> LookupArguments:
        if (self.identity is None) == (self.user_id is None):
            raise ValueError("give exactly one of identity or user_id")
        return self


class ListBatchesArguments(Arguments):
    state: BatchState | None = Field(None, description="Only batches in this state.")


class BatchArguments(Arguments):
    batch_id: Id = Field(description="The batch's id (from list_batches).")


class DraftArguments(Arguments):
    environment_id: Id = Field(description="The Main Production environment to delete from.")
    identities: list[Identifier] = Field(
        default_factory=list,
        max_length=MAX_ROWS,
        description="Identities (e-mails) of the people to erase.",
    )
    user_ids: list[UserId] = Field(
        default_factory=list,
        max_length=MAX_ROWS,
        description="Heap user_ids of the people to erase.",
    )
    reference: str | None = Field(
        None, max_length=MAX_REFERENCE_LENGTH, description="A ticket id for the request."
    )

    @model_validator(mode="after")
    def _someone(self) -> DraftArguments:
        if not self.identities and not self.user_ids:
            raise ValueError("give identities or user_ids (or both) of the people to erase")
        if len(self.identities) + len(self.user_ids) > MAX_ROWS:
            raise ValueError(f"at most {MAX_ROWS:,} people in one batch; draft several")
        return self


class PreviewArguments(Arguments):
    environment_id: Id = Field(description="The Heap environment to write to.")
    operation: CorrectionOperation = Field(description="The Heap write operation.")
    body: dict[str, Any] = Field(
        description="The operation's body as in Heap's API documentation, without app_id "
        "(single or bulk: `users`, `accounts`, `events` lists)."
    )


class CorrectionArguments(PreviewArguments):
    override_reason: str | None = Field(
        None,
        max_length=MAX_REASON_LENGTH,
        description="Why to write to people the desk is deleting (the re-ingestion guard).",
    )
    confirm_warnings: StrictBool = Field(
        False, description="Send despite the warnings preview_correction showed."
    )


def problems(error: ValidationError) -> str:
    """A validation error in plain words, naming arguments but never quoting their values."""
    lines = []
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        where = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "The arguments are not usable — " + "; ".join(lines[:20]) + "."
