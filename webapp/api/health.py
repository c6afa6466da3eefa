"""GET /api/v1/health: is the database reachable and migrated, is the scheduler alive."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, jsonify
from sqlalchemy import text
from sqlmodel import Session, select

from webapp import migrations
from webapp.api.blueprint import api
from webapp.api.openapi import op
from webapp.db import get_engine, session_scope
from webapp.lease import lease_status
from webapp.models import ChunkState, HeapRequest, utcnow


@api.get("/health")
def health():
    """Database and scheduler state; 503 when the database cannot be used."""
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
    if database["ok"]:
        with session_scope(write=False) as session:
            scheduler = {**lease_status(session), **polling_status(session)}
    body = {
        "status": "ok" if database["ok"] and database.get("at_head") else "degraded",
        "database": database,
        "scheduler": {"mode": current_app.config["DESK_SCHEDULER"], **scheduler},
    }
    return jsonify(body), 200 if database["ok"] else 503


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


PATHS = {
    "/health": {"get": op("Database, migrations and scheduler lease state", None)},
}
