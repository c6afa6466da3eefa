"""Helpers shared by the API modules: JSON bodies, validation in the view, and error answers."""

from __future__ import annotations

from functools import wraps
from typing import Any, get_type_hints

from flask import abort, request
from pydantic import BaseModel, ValidationError
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


class Refused(ValueError):
    """A value an endpoint refuses; `code` is the error code the answer carries."""

    code = "invalid"


class QueryRefused(Refused):
    """A refused query argument: the batch and subject endpoints always answered 'bad_request'."""

    code = "bad_request"


def _refusal(error: ValidationError, default_code: str) -> tuple[str, str]:
    first = error.errors(include_url=False)[0]
    cause = first.get("ctx", {}).get("error")
    return plain_message(error), getattr(cause, "code", default_code)


def _form_data(model: type[BaseModel]) -> dict:
    """The multipart fields the model declares, as sent (files from request.files); any other
    field is refused by name (the document says additionalProperties: false).

    flask-openapi3 would json.loads() every text field of a form (reference "[]" became a
    list, "1e3" the number 1000.0), so the text fields reach the model as they were sent.
    """
    keys = [field.alias or name for name, field in model.model_fields.items()]
    unknown = sorted((set(request.form) | set(request.files)) - set(keys))
    if unknown:
        raise Refused(f"Unknown field(s): {', '.join(unknown)}.")
    data: dict[str, Any] = {}
    for key in keys:
        if key in request.files:
            data[key] = request.files[key]
        elif key in request.form:
            data[key] = request.form[key]
    return data


def checked(*, status: int = 400, optional_body: bool = False):
    """Validate the view's annotated `path`, `query`, `form` and `body` models in the view.

    flask-openapi3 still reads the annotations (through functools.wraps) to write the document;
    `__delay_validate_request__` tells it not to validate before the view. Put it under
    role_required, so a request without a token is a 401, and one with the wrong role a 403,
    before its input is looked at. A refused input is answered with `status` (each endpoint
    keeps the one it always had) and the refusal's code ('invalid' unless a validator says
    otherwise), in the desk's plain words (a body that is not a JSON object included); a
    non-multipart request to a form endpoint is a 415, and a path id out of range a 404 (as one
    past MAX_ID, which no route matches). `optional_body`: an empty body counts as {}.
    """

    def decorator(view):
        hints = get_type_hints(view)
        models = {part: hints.get(part) for part in ("path", "query", "form", "body")}

        @wraps(view)
        def wrapped(**kwargs):
            try:
                if models["path"] is not None:
                    names = models["path"].model_fields
                    values = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
                    try:
                        kwargs["path"] = models["path"].model_validate(values)
                    except ValidationError:
                        abort(404)  # id 0: no such thing, as for an id past the range
                if models["query"] is not None:
                    kwargs["query"] = models["query"].model_validate(request.args.to_dict())
                if models["form"] is not None:
                    if request.mimetype != "multipart/form-data":
                        return api_error(
                            415,
                            "Send the upload as multipart/form-data: the CSV as 'file', with "
                            "'environment_id' and optionally 'received_on' and 'reference'.",
                            "unsupported_media_type",
                        )
                    kwargs["form"] = models["form"].model_validate(_form_data(models["form"]))
                if models["body"] is not None:
                    raw = {} if optional_body and not request.get_data() else json_body()
                    kwargs["body"] = models["body"].model_validate(raw)
            except (BadInput, Refused) as error:
                return api_error(status, str(error), getattr(error, "code", "invalid"))
            except ValidationError as error:
                message, code = _refusal(error, "invalid")
                return api_error(status, message, code)
            return view(**kwargs)

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
