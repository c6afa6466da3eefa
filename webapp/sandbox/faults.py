"""Scripted and random faults: what the sandbox does instead of (or around) answering."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from webapp.sandbox.config import FAULT_KINDS

FAULT_FIELDS = frozenset(
    {
        "kind", "path", "method", "retry_after", "seconds", "shape", "message", "location",
        "times", "status", "body", "content_type", "echo",
    }
)  # fmt: skip
ERROR_SHAPES = ("text", "err", "error", "error_object", "message")


@dataclass
class Fault:
    """One fault; `path` (substring) and `method` restrict which request consumes it."""

    kind: str
    path: str | None = None
    method: str | None = None
    # Seconds (a number) or an HTTP-date (a string), sent as Retry-After on 429/503.
    retry_after: float | str | None = None
    # How long "slow" / "slow_after" hold the answer.
    seconds: float = 0.0
    # For "400": which of Heap's error body shapes to answer with.
    shape: str = "text"
    message: str = "Sandbox fault"
    # For "400": append what the request named (its users, identities, user_ids) to the message,
    # JSON-encoded with non-ASCII escaped — the way an API echoes the input it refuses.
    echo: bool = False
    # For "redirect": where the 302 points.
    location: str = "https://example.invalid/moved"
    # For "respond": any answer at all (what Heap has never been seen to send, too).
    status: int = 200
    body: str = ""
    content_type: str = "application/json"
    # How many matching requests this fault applies to before it is used up.
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        """True if this fault applies to a request."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or self.path in path

    def to_json(self) -> dict[str, Any]:
        """Return the fault as queued, for the admin state endpoint."""
        return {key: value for key, value in asdict(self).items() if value is not None}


def parse_faults(payload: Any) -> list[Fault]:
    """Return the faults of a POST /_sandbox/faults body: a fault, a list, or {"faults": [...]}."""
    if isinstance(payload, dict) and "faults" in payload:
        payload = payload["faults"]
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list):
        raise ValueError('send a fault object, a list of them, or {"faults": [...]}')
    return [parse_fault(item) for item in payload]


def parse_fault(item: Any) -> Fault:
    """Return one Fault from its JSON form, or raise ValueError."""
    if not isinstance(item, dict):
        raise ValueError("each fault must be an object")
    unknown = sorted(set(item) - FAULT_FIELDS)
    if unknown:
        raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
    kind = str(item.get("kind", ""))
    if kind not in FAULT_KINDS:
        raise ValueError(f"fault kind must be one of {', '.join(sorted(FAULT_KINDS))}")
    fault = Fault(kind=kind)
    for name in ("path", "method", "message", "location", "shape", "body", "content_type"):
        if item.get(name) is not None:
            if not isinstance(item[name], str):
                raise ValueError(f"fault {name} must be a string")
            setattr(fault, name, item[name])
    if fault.shape not in ERROR_SHAPES:
        raise ValueError(f"fault shape must be one of {', '.join(ERROR_SHAPES)}")
    echo = item.get("echo", False)
    if not isinstance(echo, bool):
        raise ValueError("echo must be true or false")
    fault.echo = echo
    retry_after = item.get("retry_after")
    if retry_after is not None:
        if isinstance(retry_after, bool) or not isinstance(retry_after, int | float | str):
            raise ValueError("retry_after must be seconds or an HTTP-date string")
        fault.retry_after = retry_after
    seconds = item.get("seconds", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ValueError("seconds must be a number, 0 or more")
    fault.seconds = float(seconds)
    status = item.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError("status must be an HTTP status code")
    fault.status = status
    times = item.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise ValueError("times must be a whole number, 1 or more")
    fault.times = times
    return fault


def echoed(body: bytes) -> str:
    """What a refused request named, as JSON (non-ASCII escaped): users, or the whole body."""
    try:
        data = json.loads(body.decode("utf-8")) if body else None
    except ValueError:
        return json.dumps(body.decode("utf-8", errors="replace"))
    if isinstance(data, dict):
        data = {key: value for key, value in data.items() if key != "app_id"}
        for key in ("users", "events", "accounts"):
            if key in data:
                return json.dumps(data[key])
    return json.dumps(data)


def retry_after_header(value: float | str) -> str:
    """Format Retry-After: whole seconds stay integers, dates pass through."""
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)
