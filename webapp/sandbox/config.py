"""The sandbox's knobs, settable at start and through POST /_sandbox/config."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

DEFAULT_APP_ID = "3000610572"
# A fixed, public demo key: the sandbox guards nothing, the key only exercises Basic auth.
DEFAULT_API_KEY = "sandbox-demo-api-key"  # noqa: S105
STATUS_FAULTS = frozenset({"400", "429", "500", "502", "503", "504", "redirect", "respond"})
FAULT_KINDS = STATUS_FAULTS | {"drop", "drop_after", "slow", "slow_after", "expire_token"}
# Kinds random faults may draw; the slow ones need a duration, so only scripts use them.
RANDOM_FAULT_KINDS = FAULT_KINDS - {"slow", "slow_after", "redirect", "400", "respond"}


@dataclass
class SandboxConfig:
    """Every knob, with the defaults `desk sandbox` prints."""

    app_id: str = DEFAULT_APP_ID
    api_key: str = DEFAULT_API_KEY
    token_ttl: float = 300.0
    # Seconds after submission before a deletion completes; None: only /_sandbox/complete.
    complete_after: float | None = 0.0
    # Status polls answered "pending" before "complete" (on top of complete_after); None: no
    # such condition.
    complete_after_polls: int | None = None
    latency_ms: int = 0
    rate_limit: bool = True
    rate_limit_requests: int = 30
    rate_limit_window: float = 30.0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = ("500", "503", "429", "drop")
    seed: int | None = None

    def __post_init__(self) -> None:
        self.update({})

    def update(self, changes: dict[str, Any]) -> None:
        """Apply `changes` (JSON-like values), or raise ValueError leaving self untouched."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        merged = {**asdict(self), **changes}
        merged["fault_kinds"] = _fault_kinds(merged["fault_kinds"])
        for name in ("app_id", "api_key"):
            if not isinstance(merged[name], str) or not merged[name]:
                raise ValueError(f"{name} must be a non-empty string")
        if not merged["app_id"].isdigit():
            raise ValueError("app_id must be a string of digits")
        for name in ("token_ttl", "rate_limit_window"):
            merged[name] = _number(merged[name], name, minimum=0.001)
        if merged["complete_after"] is not None:
            merged["complete_after"] = _number(merged["complete_after"], "complete_after")
        merged["fault_rate"] = _number(merged["fault_rate"], "fault_rate")
        if merged["fault_rate"] > 1:
            raise ValueError("fault_rate must be between 0 and 1")
        for name in ("latency_ms", "rate_limit_requests"):
            merged[name] = _integer(merged[name], name)
        for name in ("complete_after_polls", "seed"):
            if merged[name] is not None:
                merged[name] = _integer(merged[name], name)
        if not isinstance(merged["rate_limit"], bool):
            raise ValueError("rate_limit must be true or false")
        for name, value in merged.items():
            setattr(self, name, value)

    def to_json(self) -> dict[str, Any]:
        """Return the settings, without the api_key."""
        data = asdict(self)
        data.pop("api_key")
        data["fault_kinds"] = list(self.fault_kinds)
        return data


def _number(value: Any, name: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}")
    return float(value)


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number, 0 or more")
    return value


def _fault_kinds(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("fault_kinds must be a non-empty list")
    kinds = tuple(str(kind) for kind in value)
    bad = sorted(set(kinds) - RANDOM_FAULT_KINDS)
    if bad:
        raise ValueError(
            f"fault_kinds may only hold {', '.join(sorted(RANDOM_FAULT_KINDS))}; got {bad}"
        )
    return kinds
