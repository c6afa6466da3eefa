"""Helpers shared by the API modules: JSON bodies and error answers."""

from __future__ import annotations

from flask import request

from ..errors import api_error


class BadInput(ValueError):
    """The request body or query is not what the endpoint takes."""


def json_body() -> dict:
    """The request's JSON object, or BadInput with a plain message."""
    if not request.is_json:
        raise BadInput("Send a JSON object with 'Content-Type: application/json'.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadInput("The body is not a JSON object.")
    return body


def bad_input(error: Exception, status: int = 422):
    """Answer a validation problem."""
    return api_error(status, str(error), "invalid")
