"""The OpenAPI document, assembled from each API module's PATHS, and the helpers that write them."""

from __future__ import annotations

from types import ModuleType

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
            paths.setdefault(path, {}).update(operations)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Deletion Desk API",
            "version": "1",
            "description": "GDPR erasure requests against Heap. Authenticate with "
            "'Authorization: Bearer <token>' (create one with `desk tokens create`). Errors "
            'are {"error": {"code", "message"}}.',
        },
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA},
        },
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
    }


def op(
    summary: str,
    role: str | None,
    *,
    body: dict | None = None,
    params: list | None = None,
    responses: dict | None = None,
) -> dict:
    """One operation object, with the error responses every endpoint shares."""
    operation = {
        "summary": summary,
        "description": f"Role: {role}." if role else "No authentication.",
        "responses": {
            **(responses or {"200": {"description": "OK"}}),
            "401": {"description": "Missing or invalid token"},
            "403": {"description": "Role does not allow this"},
        },
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
