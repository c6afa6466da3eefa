"""Heap environments over the API."""

from __future__ import annotations

from flask import jsonify
from flask_login import current_user

from webapp import environments as service
from webapp.accounts.access import role_required
from webapp.api.blueprint import api
from webapp.api.common import BadInput, bad_input, json_body
from webapp.api.openapi import op
from webapp.db import get_session
from webapp.models import Environment, Role

FIELDS = ("name", "app_id", "region", "base_url", "main_production", "api_key", "account_property")


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


@api.get("/environments")
@role_required(Role.AUDITOR)
def environments_list():
    """Every environment."""
    return jsonify(environments=[public(e) for e in service.list_environments(get_session())])


@api.post("/environments")
@role_required(Role.ADMIN)
def environments_create():
    """Register an environment: name, app_id, region, base_url, main_production, api_key."""
    try:
        body = json_body()
        unknown = set(body) - set(FIELDS)
        if unknown:
            raise BadInput(f"Unknown field(s): {', '.join(sorted(unknown))}.")
        if not isinstance(body.get("main_production", False), bool):
            raise BadInput("'main_production' must be true or false.")
        for key in ("name", "app_id", "region", "base_url", "api_key", "account_property"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise BadInput(f"'{key}' must be a string.")
        data = service.EnvironmentInput(
            **{k: body[k] for k in FIELDS if k in body and body[k] is not None}
            | {"name": body.get("name", ""), "app_id": body.get("app_id", "")}
        )
        env = service.create_environment(get_session(), actor=current_user.email, data=data)
    except (BadInput, service.EnvironmentInputError) as error:
        return bad_input(error)
    return jsonify(public(env)), 201


ENV_BODY = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["name", "app_id"],
            "properties": {
                "name": {"type": "string"},
                "app_id": {"type": "string", "pattern": "^[0-9]+$"},
                "region": {"enum": ["us", "eu"]},
                "base_url": {"type": "string"},
                "main_production": {"type": "boolean"},
                "api_key": {"type": "string"},
                "account_property": {"type": "string"},
            },
        }
    }
}
PATHS = {
    "/environments": {
        "get": op("List Heap environments", "auditor"),
        "post": op(
            "Register a Heap environment",
            "admin",
            body=ENV_BODY,
            responses={"201": {"description": "Created"}},
        ),
    },
}
