"""GET /api/v1/health: is the database reachable and migrated, is the scheduler alive."""

from __future__ import annotations

from flask import current_app, jsonify
from sqlalchemy import text

from .. import migrations
from ..db import get_engine, session_scope
from ..scheduler import lease_status
from . import api
from .openapi import op


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
            scheduler = lease_status(session)
    body = {
        "status": "ok" if database["ok"] and database.get("at_head") else "degraded",
        "database": database,
        "scheduler": {"mode": current_app.config["DESK_SCHEDULER"], **scheduler},
    }
    return jsonify(body), 200 if database["ok"] else 503


PATHS = {
    "/health": {"get": op("Database, migrations and scheduler lease state", None)},
}
