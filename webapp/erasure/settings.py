"""The erasure workflow's numeric settings (DESK_* in app.config) and their defaults."""

from __future__ import annotations

from flask import Flask

from webapp.heap.validation import MAX_DELETION_USERS

# Config keys (app.config) and their defaults.
DEFAULTS: dict[str, int] = {
    "DESK_SUBMIT_INTERVAL_SECONDS": 5,
    "DESK_CHUNK_SIZE": MAX_DELETION_USERS,
    "DESK_POLL_INTERVAL_SECONDS": 900,
    "DESK_POLL_CONCURRENCY": 4,
    "DESK_STALE_AFTER_DAYS": 30,
}


def setting(app: Flask, name: str) -> int:
    """An integer DESK_* setting from app.config, or its default."""
    value = app.config.get(name)
    return DEFAULTS[name] if value is None else int(value)


def chunk_size(app: Flask) -> int:
    """Subjects per Heap request: the configured size within Heap's 1..10,000."""
    return max(1, min(setting(app, "DESK_CHUNK_SIZE"), MAX_DELETION_USERS))
