"""The OpenAPI document, assembled from each API module's PATHS, and the helpers that write them."""

from __future__ import annotations

import copy
from types import ModuleType

WRITING_METHODS = ("post", "put", "patch", "delete")
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API token (`desk tokens create`, or the API tokens page). Each token "
    "has a scope — `read` (GET only) or `write` (also POST, PUT and DELETE; never for "
    "auditors) — and expires 1 to 365 days after its creation (90 by default); a password "
    "change revokes the owner's tokens unless kept. An expired or revoked token is answered "
    "401 saying so; a read token on a writing route 403 naming the scope.",
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
}


def document(modules: list[ModuleType]) -> dict:
    """The OpenAPI 3.1 document, assembled from the API modules' PATHS."""
    paths: dict = {}
    for module in modules:
        for path, operations in getattr(module, "PATHS", {}).items():
            # Copies: the modules' PATHS stay as written however often this runs.
            paths.setdefault(path, {}).update(copy.deepcopy(operations))
    for operations in paths.values():
        for method in WRITING_METHODS:
            if method in operations and operations[method].get("security") != []:
                _needs_write_scope(operations[method])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Deletion Desk API",
            "version": "1",
            "description": "GDPR erasure requests against Heap. Authenticate with "
            "`Authorization: Bearer <token>` (create one with `desk tokens create`). Errors "
            'are `{"error": {"code", "message"}}`. Every POST, PUT and DELETE needs a token '
            "with the `write` scope.",
        },
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": BEARER},
            "schemas": {"Error": ERROR_SCHEMA},
        },
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
    }


def _needs_write_scope(operation: dict) -> None:
    """A writing operation: say that it needs the write scope, and when the 403 comes."""
    operation["description"] += " Token scope: write."
    refused = operation["responses"].setdefault("403", {"description": "Role does not allow this"})
    refused["description"] = refused["description"].rstrip(".") + ", or a read-scoped token"


def op(
    summary: str,
    role: str | None,
    *,
    body: dict | None = None,
    params: list | None = None,
    responses: dict | None = None,
    description: str | None = None,
) -> dict:
    """One operation object, with the error responses every endpoint shares."""
    answers = {**(responses or {"200": {"description": "OK"}})}
    answers.setdefault("401", {"description": "Missing, invalid, expired or revoked token"})
    # An endpoint may describe its own 403 (e.g. four-eyes), which includes the role's.
    answers.setdefault("403", {"description": "Role does not allow this"})
    operation = {
        "summary": summary,
        "description": description or (f"Role: {role}." if role else "No authentication."),
        "responses": answers,
    }
    if role is None:
        operation["security"] = []
        for code in ("401", "403"):
            operation["responses"].pop(code)
    if body:
        operation["requestBody"] = {"required": True, "content": body}
    if params:
        operation["parameters"] = params
    return operation


def query(name: str, description: str, schema: dict | None = None, required=False) -> dict:
    """A query-string parameter."""
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }
