"""The JSON API under /api/v1 (bearer tokens; errors as {"error": {"code", "message"}})."""

from flask import jsonify

from webapp.api import (  # noqa: F401 - docs registers /api/v1/docs, described in no PATHS
    audit_api,
    batches_api,
    corrections_api,
    docs,
    environments_api,
    evidence_api,
    health,
    subjects_api,
)
from webapp.api.blueprint import api
from webapp.api.openapi import document

__all__ = ["api"]

# Every API module; each attaches its routes to `api` and describes them in its PATHS.
MODULES = [
    health,
    environments_api,
    audit_api,
    batches_api,
    subjects_api,
    corrections_api,
    evidence_api,
]


@api.get("/openapi.json")
def openapi():
    """The API's OpenAPI description (public: it holds no data)."""
    return jsonify(document(MODULES))
