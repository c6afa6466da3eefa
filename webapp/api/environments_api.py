"""Heap environments over the API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from flask_login import current_user
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from webapp import environments as service
from webapp.accounts.access import role_required
from webapp.api.blueprint import api
from webapp.api.common import bad_input, checked, document_only
from webapp.api.schemas import STORABLE, ErrorBody
from webapp.db import get_session
from webapp.errors import api_error
from webapp.models import Environment, Role

FIELDS = ("name", "app_id", "region", "base_url", "main_production", "api_key", "account_property")


class Region(StrEnum):
    us = "us"
    eu = "eu"


def _text(name: str, description: str, **schema: Any):
    """A string field; another JSON type is refused as "'name' must be a string.". Lengths,
    patterns and enums are stated in the document and checked by webapp.environments, whose
    messages the admin sees (e.g. "The name must be 1 to 100 characters.")."""

    def check(value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise ValueError(f"'{name}' must be a string.")
        return value

    return Annotated[
        str,
        BeforeValidator(check),
        Field(description=description, json_schema_extra={"pattern": STORABLE} | schema),
    ]


# Optional fields default to None without `| None`: null is dropped before validation (it means
# "not given"); the document states that null is accepted for them (and only for them).


def _body_schema(schema: dict) -> None:
    document_only({"additionalProperties": False})(schema)
    required = set(schema.get("required", ()))
    properties = schema.get("properties", {})
    for key, prop in properties.items():
        if key not in required:
            outer = {k: prop.pop(k) for k in ("title", "description") if k in prop}
            properties[key] = {"anyOf": [prop, {"type": "null"}], **outer}


def _flag(value: Any) -> Any:
    if value is not None and not isinstance(value, bool):
        raise ValueError("'main_production' must be true or false.")
    return value


class EnvironmentBody(BaseModel):
    """POST /environments. null is the same as leaving a field out."""

    model_config = ConfigDict(
        title="EnvironmentCreate",
        json_schema_extra=_body_schema,
    )

    name: _text("name", "Shown on every page", minLength=1, maxLength=100)
    app_id: _text("app_id", "Heap's numeric app id", pattern="^[0-9]+$", maxLength=20)
    region: _text("region", "Heap's region (default us)", enum=[r.value for r in Region]) = None
    base_url: _text(
        "base_url", "Override of the region's API address (allow-listed)", maxLength=500
    ) = None
    main_production: Annotated[
        bool, BeforeValidator(_flag), Field(description="The production environment")
    ] = None
    api_key: _text("api_key", "Heap API key (stored encrypted, never shown)") = None
    account_property: _text(
        "account_property",
        "The user property holding the Account ID (e.g. account_id)",
        maxLength=255,
    ) = None

    @model_validator(mode="before")
    @classmethod
    def _known(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = set(data) - set(FIELDS)
            if unknown:
                raise ValueError(f"Unknown field(s): {', '.join(sorted(unknown))}.")
            # Missing name/app_id: webapp.environments says what they must be.
            data = {"name": "", "app_id": ""} | {k: v for k, v in data.items() if v is not None}
        return data


class EnvironmentOut(BaseModel):
    """An environment as the API shows it: never the key, only when it was set."""

    model_config = ConfigDict(title="Environment")

    id: int
    name: str
    app_id: str
    region: Region
    base_url: str | None
    main_production: bool
    api_key_set_at: datetime | None = Field(description="When the API key was set; null: none")
    account_property: str | None


class EnvironmentList(BaseModel):
    environments: list[EnvironmentOut]


def public(env: Environment) -> dict:
    """An environment as the API shows it: never the key, only when it was set."""
    return {
        "id": env.id,
        "name": env.name,
        "app_id": env.app_id,
        "region": env.region,
        "base_url": env.base_url,
        "main_production": env.main_production,
        "api_key_set_at": env.api_key_set_at.isoformat() if env.api_key_set_at else None,
        "account_property": env.account_property,
    }


@api.get(
    "/environments",
    operation_id="list_environments",
    summary="List Heap environments. Role: auditor (any role).",
    responses={200: EnvironmentList},
)
@role_required(Role.AUDITOR)
def environments_list():
    """Every environment."""
    return {"environments": [public(e) for e in service.list_environments(get_session())]}


@api.post(
    "/environments",
    operation_id="create_environment",
    summary="Register a Heap environment. Role: admin.",
    responses={201: EnvironmentOut, 409: ErrorBody, 422: ErrorBody},
)
@role_required(Role.ADMIN)
@checked(status=422)
def environments_create(body: EnvironmentBody):
    """Register an environment: name, app_id, region, base_url, main_production, api_key."""
    data = service.EnvironmentInput(**body.model_dump(exclude_none=True))
    try:
        env = service.create_environment(get_session(), actor=current_user.email, data=data)
    except service.NameTaken as error:
        return api_error(409, str(error), "conflict")
    except service.EnvironmentInputError as error:
        return bad_input(error)
    return public(env), 201
