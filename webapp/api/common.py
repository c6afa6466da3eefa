"""Helpers shared by the API modules: JSON bodies, whole-number arguments and error answers."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import BadRequest

from webapp import forms
from webapp.errors import api_error
from webapp.models import MAX_ID


class BadInput(ValueError):
    """The request body or query is not what the endpoint takes."""


def json_body() -> dict:
    """The request's JSON object, or BadInput with a plain message."""
    if not request.is_json:
        raise BadInput("Send a JSON object with 'Content-Type: application/json'.")
    try:
        body = request.get_json()
    except BadRequest:
        raise BadInput("The body is not valid JSON.") from None
    except RecursionError:
        raise BadInput("The JSON body is nested too deeply.") from None
    if not isinstance(body, dict):
        raise BadInput("The body is not a JSON object.")
    # NUL and lone surrogates: the one check that forms and query strings pass too.
    problem = forms.unstorable_text(body)
    if problem:
        raise BadInput(problem)
    return body


def whole_number(
    name: str, default: int | None = None, *, minimum: int = 0, maximum: int = MAX_ID
) -> int | None:
    """The query argument `name` as a whole number in [minimum, maximum], or BadInput."""
    try:
        return forms.whole_number(name, default, minimum=minimum, maximum=maximum)
    except forms.UnfitInput as error:
        raise BadInput(str(error)) from None


def bad_input(error: Exception, status: int = 422):
    """Answer a validation problem."""
    return api_error(status, str(error), "invalid")
