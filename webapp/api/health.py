"""GET /api/v1/health: is the database reachable and migrated, is the scheduler alive.

Anyone (a load balancer, a monitor) learns only {"status": "ok" | "degraded"}; the details —
the lease holder's host and process id, the database dialect and revision — are for an
admin's token, since they help an attacker more than a monitor.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, jsonify
from flask_login import current_user
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from webapp import migrations
from webapp.api.blueprint import api
from webapp.api.openapi import op
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


@api.get("/health")
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


HEALTH_OPERATION = op(
    "Whether the desk works: database, migrations and scheduler lease state",
    None,
    description='No authentication: {"status": "ok" | "degraded"} only (503 when the database '
    "cannot be used). With an admin's token: also `database` (dialect, revision, at_head) and "
    "`scheduler` (lease holder, last tick and poll, open Heap requests).",
)
# Anonymous or with a token: OpenAPI's optional authentication (an empty requirement first).
HEALTH_OPERATION["security"] = [{}, {"bearer": []}]

PATHS = {"/health": {"get": HEALTH_OPERATION}}
