"""The JSON API under /api/v1 (bearer tokens; errors as {"error": {"code", "message"}}).

Each module attaches its routes, with their request and answer models, to `api`; flask-openapi3
writes the OpenAPI 3.1 document from those models (the ones that also validate the requests).
"""

from flask import current_app, jsonify

from webapp.api import (  # noqa: F401 - importing a module registers its routes on `api`
    audit_api,
    batches_api,
    corrections_api,
    docs,
    environments_api,
    evidence_api,
    health,
    row_fixes_api,
    subjects_api,
)
from webapp.api.blueprint import PREFIX, api

__all__ = ["api"]

DESCRIPTION = (
    "GDPR erasure requests against Heap. Authenticate with `Authorization: Bearer <token>` "
    "(create one under *API tokens* or with `desk tokens create`). Each token has a scope — "
    "`read` (GET only) or `write` (also POST, PUT and DELETE; never for auditors) — and expires "
    '1 to 365 days after its creation. Errors are `{"error": {"code", "message"}}`; a '
    "method a path does not have is 405 with an `Allow` header."
)


def document() -> dict:
    """The generated document, its paths relative to the `/api/v1` server."""
    generated = current_app.api_doc
    paths = {
        path.removeprefix(PREFIX) or "/": item
        for path, item in sorted(generated["paths"].items())
        if path.startswith(PREFIX)
    }
    info = {**generated["info"], "description": DESCRIPTION}
    return {**generated, "info": info, "servers": [{"url": PREFIX}], "paths": paths}


@api.get("/openapi.json", doc_ui=False)
def openapi():
    """The API's OpenAPI description (public: it holds no data), written from its models."""
    return jsonify(document())
