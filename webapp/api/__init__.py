"""The JSON API under /api/v1 (bearer tokens; errors as {"error": {"code", "message"}})."""

from flask import Blueprint

api = Blueprint("api", __name__, url_prefix="/api/v1")

# Every API module; each attaches its routes to `api` and describes them in its PATHS.
from . import audit_api, environments_api, health, openapi  # noqa: E402,F401

MODULES = [health, environments_api, audit_api]
