"""The API's blueprint: every API module attaches its routes to it."""

from flask import Blueprint

from webapp.accounts.access import require_write_scope

api = Blueprint("api", __name__, url_prefix="/api/v1")
# Before any API view: a read-scoped token never reaches a POST, PUT, PATCH or DELETE.
api.before_request(require_write_scope)
