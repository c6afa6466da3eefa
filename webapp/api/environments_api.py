"""Heap environments over the API."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from flask_login import current_user
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from webapp import environments as service
from webapp import tool_policy
from webapp.accounts.access import role_required
from webapp.api.blueprint import api
from webapp.api.common import bad_input, checked, document_only
from webapp.api.heap_fields import BLANK, STORABLE_FILLED
from webapp.api.schemas import STORABLE, ErrorBody, Id
from webapp.db import get_session
from webapp.errors import api_error
from webapp.heap.hosts import HEAP_HOSTNAMES
from webapp.models import Environment, Role

FIELDS = ("name", "app_id", "region", "base_url", "main_production", "api_key", "account_property")


NAME = "The name must be 1 to 100 characters."
APP_ID = "The app_id must be the environment's numeric id in Heap."
# A base URL as the desk takes one without an operator's allowlist (heap.hosts.check_base_url):
# https to one of Heap's own hosts, an optional port and path; no user, query or fragment.
# Spaces around and trailing slashes are dropped; blank means the region's own address.
_HEAP_HOSTS = "|".join(re.escape(host) for host in sorted(HEAP_HOSTNAMES))
BASE_URL = (
    f"^[{BLANK}]*https://({_HEAP_HOSTS})(:[0-9]{{1,4}})?"
    f"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*[{BLANK}]*$"
)
NO_URL = f"^[{BLANK}/]*$"


class Region(StrEnum):
    us = "us"
    eu = "eu"


def _text(name: str, description: str, *, refused: str | None = None, **schema: Any):
    """A string field; another JSON type is refused as "'name' must be a string.". Lengths,
    patterns and enums are stated in the document and checked by webapp.environments, whose
    messages the admin sees (e.g. "The name must be 1 to 100 characters."); the service
    strips spaces before it counts, so a text longer than maxLength as sent is refused here,
    with the service's message (`refused`), and the document's maxLength holds."""

    def check(value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise ValueError(f"'{name}' must be a string.")
        if refused and isinstance(value, str) and len(value) > schema["maxLength"]:
            raise ValueError(refused)
        return value

    return Annotated[
        str,
        BeforeValidator(check),
        Field(description=description, json_schema_extra={"pattern": STORABLE} | schema),
    ]


# Optional fields default to None without `| None`: null is dropped before validation (it means
# "not given"); the document states that null is accepted for them (and only for them).


def _body_schema(schema: dict) -> None:
    # Main Production needs its deletion API key (the service's check, stated).
    key_rule = {
        "anyOf": [
            {"not": {"required": ["main_production"]}},
            {"properties": {"main_production": {"not": {"const": True}}}},
            {"required": ["api_key"], "properties": {"api_key": {"pattern": STORABLE_FILLED}}},
        ]
    }
    document_only({"additionalProperties": False, "allOf": [key_rule]})(schema)
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

    name: _text(
        "name",
        "Shown on every page",
        refused=NAME,
        minLength=1,
        maxLength=100,
        pattern=STORABLE_FILLED,
    )
    app_id: _text(
        "app_id",
        "Heap's numeric app id",
        refused=APP_ID,
        pattern=f"^[{BLANK}]*[0-9]+[{BLANK}]*$",
        maxLength=20,
    )
    region: _text("region", "Heap's region (default us)", enum=[r.value for r in Region]) = None
    base_url: _text(
        "base_url",
        "Override of the region's API address: https to one of Heap's hosts, or a host "
        "DESK_HEAP_URL_ALLOWLIST lists (such as the sandbox); no query",
        refused=f"The base URL must be at most {service.MAX_BASE_URL_LENGTH} characters.",
        maxLength=service.MAX_BASE_URL_LENGTH,
        anyOf=[{"pattern": BASE_URL}, {"pattern": NO_URL}],
    ) = None
    main_production: Annotated[
        bool, BeforeValidator(_flag), Field(description="The production environment")
    ] = None
    api_key: _text("api_key", "Heap API key (stored encrypted, never shown)") = None
    account_property: _text(
        "account_property",
        "The user property holding the Account ID (e.g. account_id)",
        refused="The account property must be at most "
        f"{service.MAX_ACCOUNT_PROPERTY_LENGTH} characters.",
        maxLength=service.MAX_ACCOUNT_PROPERTY_LENGTH,
        **{"not": {"pattern": f"^[{BLANK}]*[iI][dD][{BLANK}]*$"}},  # Heap forbids `id`
    ) = None

    @field_validator("app_id", mode="before")
    @classmethod
    def _digits(cls, value: Any) -> Any:
        # str.isdigit() (the service's test) also takes "²" and "٣": Heap's ids are ASCII.
        if isinstance(value, str) and value.strip() and not value.strip().isascii():
            raise ValueError(APP_ID)
        return value

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


# ----- the tool policy ---------------------------------------------------------------------
# The path takes any text and the model checks it (404 when it is no id): with `<int:...>`,
# werkzeug answers a PUT to an id past the converter's maximum 405 (the GET's path matched).
class EnvironmentPath(BaseModel):
    environment_id: Id = Field(description="The environment's id (as GET /environments lists)")


def _operations_schema(value: dict) -> dict:
    properties = {
        op: value | {"description": tool_policy.LABELS[op]} for op in tool_policy.OPERATIONS
    }
    return {"type": "object", "properties": properties, "additionalProperties": False}


_MAX = tool_policy.MAX_ITEMS_LIMIT
# The limits webapp.tool_policy checks, stated for the document (its messages are the answer's).
_KEY = {
    "type": "string",
    "minLength": 1,
    "maxLength": tool_policy.MAX_KEY_LENGTH,
    # No control character, and something besides spaces.
    "pattern": r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$",
}
_DESCRIPTION = {
    "type": "string",
    "maxLength": tool_policy.MAX_DESCRIPTION_LENGTH,
    "pattern": r"^[^\x00-\x08\x0b-\x1f]*$",
}


def _declared(schema: dict, description: str):
    """A policy field as the document states it; webapp.tool_policy checks the value sent."""
    return Annotated[Any, WithJsonSchema(schema), Field(None, description=description)]


def _integral(value: Any) -> Any:
    """JSON's 100.0 is the integer 100 (JSON Schema says so); the policy takes Python ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class PolicyBody(BaseModel):
    """PUT /environments/{id}/policy: any subset of the policy's fields."""

    model_config = ConfigDict(
        title="EnvironmentPolicyChange",
        json_schema_extra=document_only({"additionalProperties": False}),
    )

    operations: _declared(
        _operations_schema({"type": "boolean"}),
        "Operations to switch on (true) or off (false); those not named keep their setting",
    )
    corrections_four_eyes_above: Annotated[
        _declared(
            {"anyOf": [{"type": "integer", "minimum": 0, "maximum": _MAX}, {"type": "null"}]},
            "A correction of more items waits for a second officer (0: every one; null: none)",
        ),
        BeforeValidator(_integral),
    ]
    max_items: Annotated[
        _declared(
            {"type": "integer", "minimum": 1, "maximum": _MAX},
            "The most items one correction carries",
        ),
        BeforeValidator(_integral),
    ]
    forbidden_property_keys: _declared(
        {"type": "array", "maxItems": tool_policy.MAX_FORBIDDEN_KEYS, "items": _KEY},
        "Property keys nobody may write: names or patterns with * and ?, any letter case "
        "(replaces the list)",
    )
    descriptions: _declared(
        _operations_schema(_DESCRIPTION),
        "Texts the forms and MCP tools show per operation; empty: the desk's own",
    )

    @model_validator(mode="before")
    @classmethod
    def _known(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = set(data) - set(tool_policy.FIELDS)
            if unknown:
                raise ValueError(f"Unknown field(s): {', '.join(sorted(unknown))}.")
        return data


class PolicyOut(BaseModel):
    """An environment's tool policy."""

    model_config = ConfigDict(title="EnvironmentPolicy")

    operations: Annotated[dict[str, bool], WithJsonSchema(_operations_schema({"type": "boolean"}))]
    corrections_four_eyes_above: int | None = Field(
        description="A correction of more items waits for a second officer; null: never"
    )
    max_items: int
    forbidden_property_keys: list[str]
    descriptions: Annotated[dict[str, str], WithJsonSchema(_operations_schema({"type": "string"}))]


def _policy_environment(environment_id: int) -> Environment | None:
    return get_session().get(Environment, environment_id)


@api.get(
    "/environments/<environment_id>/policy",
    operation_id="get_environment_policy",
    summary="An environment's tool policy: operations offered and guardrails. Role: auditor "
    "(any role).",
    responses={200: PolicyOut, 404: ErrorBody},
)
@role_required(Role.AUDITOR)
@checked()
def environment_policy(path: EnvironmentPath):
    """Which Heap operations the environment offers, four-eyes, limits and descriptions."""
    env = _policy_environment(path.environment_id)
    if env is None:
        return api_error(404, f"There is no environment {path.environment_id}.")
    return tool_policy.policy_of(get_session(), env).as_json()


@api.put(
    "/environments/<environment_id>/policy",
    operation_id="update_environment_policy",
    summary="Change an environment's tool policy (any subset of its fields). Role: admin.",
    responses={200: PolicyOut, 404: ErrorBody, 422: ErrorBody},
)
@role_required(Role.ADMIN)
@checked()
def environment_policy_update(path: EnvironmentPath, body: PolicyBody):
    """Apply the fields sent (audited with the policy before and after); answer the whole."""
    db = get_session()
    env = _policy_environment(path.environment_id)
    if env is None:
        return api_error(404, f"There is no environment {path.environment_id}.")
    try:
        policy = tool_policy.update_policy(
            db, actor=current_user.email, env=env, changes=body.model_dump(exclude_unset=True)
        )
    except tool_policy.PolicyInputError as error:
        db.rollback()
        return bad_input(error)
    return policy.as_json()
