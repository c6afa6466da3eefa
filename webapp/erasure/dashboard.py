"""What needs attention now: the dashboard's figures and lists in a few indexed queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlmodel import Session, select

from webapp.erasure import deadlines
from webapp.erasure.queries import BatchRow
from webapp.models import Batch, BatchState, ChunkState, Environment, HeapRequest, User

LIST_LIMIT = 10
OPEN_STATES = [s.value for s in BatchState if s.open]
FAILING_STATES = [BatchState.FAILED.value, BatchState.WAITING_RETRY.value]


@dataclass
class Dashboard:
    """The dashboard's content for one person."""

    open_count: int
    open_batches: list[BatchRow]
    awaiting_mine: list[BatchRow]
    awaiting_mine_count: int
    failing: list[BatchRow]
    stale_requests: int
    at_risk: deadlines.AtRisk
    environments: int


def _rows(session: Session, where, limit: int = LIST_LIMIT) -> tuple[list[BatchRow], int]:
    """Newest batches matching `where`, with their progress, and how many match in all."""
    total = session.exec(select(sa.func.count()).select_from(Batch).where(where)).one()
    query = (
        select(Batch, Environment.name, User.email)
        .join(Environment, Environment.id == Batch.environment_id)
        .join(User, User.id == Batch.uploaded_by)
        .where(where)
        .order_by(Batch.created_at.desc(), Batch.id.desc())
        .limit(limit)
    )
    rows = [
        BatchRow(batch=b, environment=env, uploader=email) for b, env, email in session.exec(query)
    ]
    return rows, total


def dashboard(
    session: Session, *, user_id: int, can_approve: bool, today: date | None = None
) -> Dashboard:
    """Open batches, batches awaiting this person's approval, failures and deadlines at risk."""
    open_batches, open_count = _rows(session, Batch.state.in_(OPEN_STATES))
    awaiting, awaiting_count = ([], 0)
    if can_approve:
        awaiting, awaiting_count = _rows(
            session,
            sa.and_(
                Batch.state == BatchState.AWAITING_APPROVAL.value, Batch.uploaded_by != user_id
            ),
        )
    failing, _ = _rows(session, Batch.state.in_(FAILING_STATES))
    stale = session.exec(
        select(sa.func.count())
        .select_from(HeapRequest)
        .where(HeapRequest.stale.is_(True), HeapRequest.state != ChunkState.COMPLETE.value)
    ).one()
    return Dashboard(
        open_count=open_count,
        open_batches=open_batches,
        awaiting_mine=awaiting,
        awaiting_mine_count=awaiting_count,
        failing=failing,
        stale_requests=stale,
        at_risk=deadlines.at_risk(session, today=today),
        environments=session.exec(select(sa.func.count()).select_from(Environment)).one(),
    )
