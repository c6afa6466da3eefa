"""GET /api/v1/health: database, migrations, the scheduler lease, and how fresh polling is.

The details are an admin's (tests/security/test_health.py: anyone else gets the status only).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa
from batch_fixtures import *  # noqa: F401,F403
from sqlmodel import select
from workflow_factories import make_accepted_chunks

from webapp.db import session_scope
from webapp.lease import acquire_lease
from webapp.models import ChunkState, HeapRequest, utcnow


def _no_heap(users) -> str:
    """Chunks made straight into the database: Heap is never asked in these tests."""
    return uuid.uuid4().hex


def _details(client, api_token) -> dict:
    return client.get(
        "/api/v1/health", headers={"Authorization": f"Bearer {api_token('admin')}"}
    ).json


def test_health_without_heap_requests_reports_no_poll_yet(client, api_token):
    body = _details(client, api_token)
    assert body["status"] == "ok"
    scheduler = body["scheduler"]
    assert scheduler["mode"] == "off"
    assert scheduler["lease_holder"] is None
    assert scheduler["last_poll_at"] is None and scheduler["last_poll_age_seconds"] is None
    assert scheduler["open_heap_requests"] == 0


def test_health_reports_the_age_of_the_last_poll_and_open_requests(app, client, env_id, api_token):
    batch_id = make_accepted_chunks(app, None, env_id, chunks=3, create=_no_heap)
    now = utcnow()
    with app.app_context(), session_scope(write=True) as session:
        chunk_ids = session.exec(
            select(HeapRequest.id)
            .where(HeapRequest.batch_id == batch_id)
            .order_by(HeapRequest.chunk_index)
        ).all()
        polled = [now - timedelta(minutes=40), now - timedelta(minutes=5), None]
        for chunk_id, at in zip(chunk_ids, polled, strict=True):
            session.exec(
                sa.update(HeapRequest).where(HeapRequest.id == chunk_id).values(last_polled_at=at)
            )
        # A finished request still counts for the last poll, but is no longer open.
        session.exec(
            sa.update(HeapRequest)
            .where(HeapRequest.id == chunk_ids[0])
            .values(state=ChunkState.COMPLETE.value)
        )
        acquire_lease(session, holder="host-a:123:abc", ttl_seconds=60)

    scheduler = _details(client, api_token)["scheduler"]
    assert scheduler["lease_holder"] == "host-a:123:abc"
    assert scheduler["open_heap_requests"] == 2
    assert 5 * 60 - 5 <= scheduler["last_poll_age_seconds"] <= 5 * 60 + 30
    assert scheduler["last_poll_at"] == polled[1].isoformat()
