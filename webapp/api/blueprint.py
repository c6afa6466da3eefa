"""The API's blueprint: every API module attaches its routes (and their models) to it."""

from flask_openapi3 import APIBlueprint

from webapp.accounts.access import require_write_scope
from webapp.api.schemas import COMMON_ERRORS

PREFIX = "/api/v1"
api = APIBlueprint(
    "api",
    __name__,
    url_prefix=PREFIX,
    abp_security=[{"bearer": []}],
    abp_responses=COMMON_ERRORS,
)
# Before any API view: a read-scoped token never reaches a POST, PUT, PATCH or DELETE.
api.before_request(require_write_scope)
