"""The JSON API under /api/v1 (bearer tokens; errors as {"error": {"code", "message"}})."""

from flask import Blueprint

api = Blueprint("api", __name__, url_prefix="/api/v1")

# Every API module; each attaches its routes to `api` and describes them in its PATHS.
from webapp.api import (  # noqa: E402,F401
    audit_api,
    batches_api,
    corrections_api,
    environments_api,
    evidence_api,
    health,
    openapi,
    subjects_api,
)

MODULES = [
    health,
    environments_api,
    audit_api,
    batches_api,
    subjects_api,
    corrections_api,
    evidence_api,
]
