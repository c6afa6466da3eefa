"""The building blocks of correction checks: plain-language problems, named people, warnings.

Heap's rules themselves live in `webapp.heap.validation`; this module turns their errors into
sentences an officer reads, and collects every problem instead of stopping at the first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webapp.forms import hidden_character
from webapp.heap import HeapValidationError, PreparedCall, email_key_warnings
from webapp.heap import validation as rules

MAX_PROBLEMS = 20
# As in uploads (intake_rows): a line break, tab or other control character in an identity or
# a name is a data error, and Heap would keep it as part of the value.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FIELD_WORDS = {"identity", "user_id", "event", "timestamp", "account_id", "properties"}


class CorrectionInputError(ValueError):
    """The input breaks a rule; `problems` lists each one in plain words."""

    code = "invalid"

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(" ".join(self.problems))


class EnvironmentNotFound(CorrectionInputError):
    """The environment named does not exist."""

    code = "not_found"


class EnvironmentConflict(CorrectionInputError):
    """Refused because of how the environment is set up (its app_id, its Account ID
    property, its key or address), not because of the correction's form."""

    code = "conflict"


@dataclass(frozen=True)
class Named:
    """A person a correction names (row is 1-based in bulk lists, None for single forms)."""

    kind: str  # "identity" | "user_id"
    value: str
    row: int | None = None


@dataclass(frozen=True)
class Notice:
    """A warning shown before sending; `confirm` ones must be accepted explicitly."""

    code: str
    message: str
    confirm: bool = False


@dataclass
class Plan:
    """A validated correction: the calls to send and what the officer should know first."""

    family: str
    operation: str
    calls: list[PreparedCall]
    items: int
    named: list[Named] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    # Values the desk chose (a generated idempotency key) that the form must carry to "send".
    filled: dict[str, str] = field(default_factory=dict)


def sentence(error: HeapValidationError) -> str:
    """Heap's rule as a sentence an officer reads: "Row 3: the identity is …"."""
    reason = error.reason.rstrip(".")
    first = reason.split(" ", 1)[0]
    reason = f"the {reason}" if first in _FIELD_WORDS else reason
    if error.row is not None:
        return f"Row {error.row}: {reason}."
    return reason[0].upper() + reason[1:] + "."


class Checker:
    """Collect every broken rule instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def __call__(self, check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one of Heap's checks; on failure note the problem and return None."""
        try:
            return check(*args, **kwargs)
        except HeapValidationError as error:
            if len(self.problems) < MAX_PROBLEMS:
                self.problems.append(sentence(error))
            return None

    def add(self, problem: str) -> None:
        """Note a problem found by the desk's own checks."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def done(self) -> None:
        """Raise every problem noted, if any."""
        if self.problems:
            raise CorrectionInputError(self.problems)


def fields_of(data: Mapping[str, Any], allowed: set[str]) -> dict[str, Any]:
    """The input without empty values; unknown fields are refused by name."""
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise CorrectionInputError(f"Unknown field(s): {', '.join(unknown)}.")
    return {key: value for key, value in data.items() if value is not None and value != ""}


def no_control(check: Checker, value: Any, what: str, row: int | None = None) -> bool:
    """Note a problem if text that names something (identity, event, property) has control
    or invisible characters (zero-width, bidi overrides: look-alikes of another value, as in
    uploads); True if it has none."""
    if not isinstance(value, str):
        return True
    where = f"Row {row}: the" if row is not None else "The"
    if _CONTROL.search(value):
        check.add(f"{where} {what} contains control characters (a line break, tab or NUL).")
        return False
    hidden = hidden_character(value)
    if hidden:
        check.add(f"{where} {what} contains {hidden}.")
        return False
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def properties_of(check: Checker, value: Any, *, row: int | None, required: bool = True) -> dict:
    """Check properties, with a plain message for Heap's forbidden `id` key."""
    if isinstance(value, Mapping):
        unfit = [key for key in value if not no_control(check, key, "property name", row)]
        if unfit:
            return {}
        where = f"Row {row}: property" if row is not None else "Property"
        for key, item in value.items():
            if isinstance(key, str) and key.strip().casefold() == "id":
                check.add(
                    f"{where} “{key}” cannot be sent: Heap reserves the name “id” in any casing."
                )
                return {}
            if _is_int(item) and abs(item) > rules.MAX_USER_ID:
                # Heap keeps numbers as doubles: a larger whole number would silently change.
                check.add(
                    f"{where} “{str(key)[:40]}” is a whole number beyond ±2^53-1, which Heap "
                    "cannot keep exactly: send it as text."
                )
                return {}
    return check(rules.validate_properties, value, row=row, required=required) or {}


def email_notices(properties_list: list[Mapping[str, Any]]) -> list[Notice]:
    """One warning per capitalised Email-like key, however many rows repeat it."""
    messages = dict.fromkeys(m for props in properties_list for m in email_key_warnings(props))
    return [Notice("email_key", message) for message in messages]


def identity_of(check: Checker, value: Any, row: int | None = None) -> str | None:
    """A checked identity, or None with the problem noted (missing, not text, too long)."""
    if value is None:
        check.add(f"Row {row}: the identity is missing." if row else "Enter the identity.")
        return None
    if not no_control(check, value, "identity", row):
        return None
    return check(rules.validate_identity, value, row=row)
