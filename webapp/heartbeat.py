"""The scheduler's heartbeat job: keeps the lease renewed and the last tick fresh."""

from __future__ import annotations

from flask import Flask

from .scheduler import register


@register("heartbeat", seconds=lambda app: int(app.config.get("DESK_LEASE_SECONDS", 60)) // 3)
def heartbeat(app: Flask, fencing_token: int) -> None:
    """Nothing to do but prove the scheduler is alive: DeskScheduler.tick records it."""
