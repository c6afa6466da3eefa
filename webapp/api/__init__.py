"""The JSON API under /api/v1 (bearer tokens; errors as {"error": {"code", "message"}})."""

from flask import Blueprint

api = Blueprint("api", __name__, url_prefix="/api/v1")

from . import audit_api, environments_api, health  # noqa: E402,F401  (routes attach to `api`)
