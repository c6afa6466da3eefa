"""The erasure workflow's scheduler jobs: submit approved batches, poll open Heap requests."""

from __future__ import annotations

from flask import Flask

from . import polling, submission
from .deletion_requests import setting
from .scheduler import register


@register("submit_batches", seconds=lambda app: setting(app, "DESK_SUBMIT_INTERVAL_SECONDS"))
def submit_batches(app: Flask, fencing_token: int) -> None:
    """Send the due chunks of approved batches to Heap."""
    submission.submit_due(app, fencing_token)


@register("poll_heap", seconds=polling.poll_tick_seconds)
def poll_heap(app: Flask, fencing_token: int) -> None:
    """Ask Heap about every open deletion request that is due."""
    polling.poll_due(app, fencing_token)
