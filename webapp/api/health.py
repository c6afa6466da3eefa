"""GET /api/v1/health: is the database reachable and migrated, is the scheduler alive.

Anyone (a load balancer, a monitor) learns only {"status": "ok" | "degraded"}; the details —
the lease holder's host and process id, the database dialect and revision — are for an
admin's token, since they help an attacker more than a monitor.
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from flask import current_app, jsonify
from flask_login import current_user
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from webapp import migrations
from webapp.api.blueprint import api
from webapp.db import close_session, get_engine, session_scope
from webapp.lease import lease_status
from webapp.models import ChunkState, HeapRequest, Role, utcnow


def _admin_asks() -> bool:
    """True when the request carries a valid token of an admin."""
    try:
        return current_user.is_authenticated and current_user.can(Role.ADMIN)
    except SQLAlchemyError:  # the token could not be looked up: answer as to anyone
        close_session()
        return False


class DatabaseState(BaseModel):
    ok: bool = Field(description="The database answered")
    dialect: str | SkipJsonSchema[None] = Field(None, description="sqlite or postgresql")
    revision: list[str] | SkipJsonSchema[None] = Field(None, description="Applied migrations")
    at_head: bool | SkipJsonSchema[None] = Field(None, description="Every migration applied")
    error: str | SkipJsonSchema[None] = Field(None, description="Why it did not answer")


class SchedulerState(BaseModel):
    mode: str = Field(description="DESK_SCHEDULER: inprocess or off")
    lease_holder: str | None = Field(None, description="host:pid of the scheduler holding it")
    lease_valid: bool | None = None
    fencing_token: int | None = None
    last_tick_at: str | None = Field(None, description="UTC ISO 8601")
    last_tick_age_seconds: float | None = None
    last_poll_at: str | None = Field(None, description="When Heap was last polled (UTC ISO 8601)")
    last_poll_age_seconds: float | None = None
    open_heap_requests: int | None = Field(None, description="Heap requests not yet finished")


class Health(BaseModel):
    """Anyone gets `status`; an admin's token also `database` and `scheduler`."""

    model_config = {"title": "Health"}
    status: Literal["ok", "degraded"]
    database: DatabaseState | SkipJsonSchema[None] = Field(None, description="Admin token only")
    scheduler: SchedulerState | SkipJsonSchema[None] = Field(None, description="Admin token only")


@api.get(
    "/health",
    operation_id="get_health",
    summary="Whether the desk works: database, migrations and scheduler lease state",
    description='No authentication needed: {"status": "ok" | "degraded"} only, and 503 when the '
    "database cannot be used. With an admin's token: also `database` (dialect, revision, "
    "at_head) and `scheduler` (lease holder, last tick and poll, open Heap requests).",
    # Anonymous or with a token: OpenAPI's optional authentication. The blueprint appends its
    # {"bearer": []} to an operation's own list, so the empty requirement is all to add here.
    security=[{}],
    responses={200: Health, 503: Health},
)
def health():
    """Database and scheduler state (details for an admin); 503 when the database is unusable."""
    engine = get_engine()
    database = {"ok": False}
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = migrations.current_revisions(engine)
        heads = migrations.head_revisions()
        database = {
            "ok": True,
            "dialect": engine.dialect.name,
            "revision": sorted(current),
            "at_head": current == heads,
        }
    except Exception as error:  # noqa: BLE001 - report, do not crash the health check
        database["error"] = type(error).__name__
    scheduler = {}
    if database["ok"] and _admin_asks():
        with session_scope(write=False) as session:
            scheduler = {**lease_status(session), **polling_status(session)}
    status = "ok" if database["ok"] and database.get("at_head") else "degraded"
    code = 200 if database["ok"] else 503
    # Without a database no token can be checked: the status is all anyone gets.
    if not (database["ok"] and _admin_asks()):
        return jsonify(status=status), code
    body = {
        "status": status,
        "database": database,
        "scheduler": {"mode": current_app.config["DESK_SCHEDULER"], **scheduler},
    }
    return jsonify(body), code


# A request is open until Heap completes it or refuses it for good.
OPEN_CHUNK_STATES = [
    s.value for s in ChunkState if s not in {ChunkState.COMPLETE, ChunkState.FAILED}
]


def polling_status(session: Session) -> dict:
    """When Heap was last polled (a stalled poller shows as a growing age) and what is open."""
    last_polled, open_count = session.exec(
        select(
            sa.func.max(HeapRequest.last_polled_at),
            sa.func.count().filter(HeapRequest.state.in_(OPEN_CHUNK_STATES)),
        ).select_from(HeapRequest)
    ).one()
    return {
        "last_poll_at": last_polled.isoformat() if last_polled else None,
        "last_poll_age_seconds": (
            round((utcnow() - last_polled).total_seconds(), 1) if last_polled else None
        ),
        "open_heap_requests": open_count,
    }
