"""Helpers shared by the API modules: JSON bodies, whole-number arguments and error answers."""

from __future__ import annotations

from functools import wraps
from typing import get_type_hints

from flask import request
from pydantic import ValidationError
from werkzeug.exceptions import BadRequest

from webapp import forms
from webapp.api.schemas import plain_message
from webapp.errors import api_error


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


def bad_input(error: Exception, status: int = 422):
    """Answer a validation problem."""
    return api_error(status, str(error), "invalid")


def checked_in_view(status: int = 422):
    """Validate the view's `body` (JSON) and `query` models inside the view, after role_required.

    flask-openapi3 still reads the annotations (through functools.wraps) to write the document;
    `__delay_validate_request__` tells it not to validate before the view, so a request without
    a token is a 401 before its input is looked at, and a refusal keeps this endpoint's status
    (422 "invalid") and the desk's plain messages (a body that is not a JSON object included).
    Only for routes without path parameters (flask-openapi3 then passes those as they are).
    """

    def decorator(view):
        hints = get_type_hints(view)
        body_model, query_model = hints.get("body"), hints.get("query")

        @wraps(view)
        def wrapped(*args, **kwargs):
            try:
                if query_model is not None:
                    kwargs["query"] = query_model.model_validate(request.args.to_dict())
                if body_model is not None:
                    kwargs["body"] = body_model.model_validate(json_body())
            except BadInput as error:
                return bad_input(error, status)
            except ValidationError as error:
                return api_error(status, plain_message(error), "invalid")
            return view(*args, **kwargs)

        wrapped.__delay_validate_request__ = True
        return wrapped

    return decorator


def document_only(extra: dict | None = None):
    """A model's json_schema_extra: drop `"default": null` of optional fields (a field left out
    is simply absent; the document does not invite null) and add `extra` (e.g. required)."""

    def adjust(schema: dict) -> None:
        for prop in schema.get("properties", {}).values():
            if "default" in prop and prop["default"] is None:
                del prop["default"]
        schema.update(extra or {})

    return adjust
