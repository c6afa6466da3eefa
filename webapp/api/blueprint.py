"""The API's blueprint: every API module attaches its routes to it."""

from flask import Blueprint

api = Blueprint("api", __name__, url_prefix="/api/v1")
