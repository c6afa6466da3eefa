"""Helpers shared by the API modules: JSON bodies, whole-number arguments and error answers."""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.exceptions import BadRequest

from webapp.errors import api_error
from webapp.models import MAX_ID


class BadInput(ValueError):
    """The request body or query is not what the endpoint takes."""


def _has_nul(value: Any) -> bool:
    """True if a NUL character hides in any key or text of a parsed JSON value.

    Iterative: the body may be as deeply nested as the JSON parser allows.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


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
    # PostgreSQL cannot store NUL in text, and no field of the desk has a use for it.
    if _has_nul(body):
        raise BadInput("Text in the body must not contain NUL characters (\\u0000).")
    return body


def whole_number(
    name: str, default: int | None = None, *, minimum: int = 0, maximum: int = MAX_ID
) -> int | None:
    """The query argument `name` as a whole number in [minimum, maximum], or BadInput."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    # Length first: int() of thousands of digits is slow, and refused past 4,300.
    digits = raw.isascii() and raw.isdigit() and len(raw) <= len(str(maximum))
    if not digits or not minimum <= int(raw) <= maximum:
        raise BadInput(f"'{name}' must be a whole number from {minimum} to {maximum}.")
    return int(raw)


def bad_input(error: Exception, status: int = 422):
    """Answer a validation problem."""
    return api_error(status, str(error), "invalid")
