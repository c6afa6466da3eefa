"""The batch page as a whole: detail, rows, problems (also as CSV), and what approval sends."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import Flask, current_app
from sqlmodel import Session, select

from webapp.db import session_scope
from webapp.erasure.queries import (
    PROBLEM_CLASSES,
    BatchDetail,
    Page,
    batch_detail,
    identifier,
    subjects_page,
)
from webapp.erasure.settings import chunk_size as configured_chunk_size
from webapp.heap.calls import PreparedCall, build_call
from webapp.heap.hosts import resolve_hosts
from webapp.models import BatchState, RowClass, Subject
from webapp.trail import exports

PREVIEW_USERS = 5


def problems_csv(app: Flask, batch_id: int) -> Iterator[str]:
    """Every problem row of a batch as CSV (cells neutralised against formula injection)."""

    def rows():
        with app.app_context(), session_scope(write=False, app=app) as session:
            query = (
                select(Subject)
                .where(Subject.batch_id == batch_id, Subject.classification.in_(PROBLEM_CLASSES))
                .order_by(Subject.row_number)
            )
            for subject in session.exec(query):
                yield [
                    subject.row_number,
                    subject.classification,
                    subject.problem,
                    identifier(subject) or "",
                ]

    return exports.csv_lines(["row", "classification", "problem", "value_as_uploaded"], rows())


@dataclass
class Preview:
    """What approval will send: a sample of the deletion body and how many requests."""

    call: PreparedCall | None
    shown: int
    total: int
    chunk_size: int
    warnings: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def kinds_text(self) -> str:
        """'3 identities and 2 user_ids'."""
        names = {"identity": ("identity", "identities"), "user_id": ("user_id", "user_ids")}
        parts = [
            f"{n:,} {names[kind][0] if n == 1 else names[kind][1]}"
            for kind, n in sorted(self.kinds.items())
            if kind in names
        ]
        return " and ".join(parts)

    @property
    def requests(self) -> int:
        return math.ceil(self.total / self.chunk_size) if self.total else 0


def preview(session: Session, detail: BatchDetail) -> Preview:
    """The first valid subjects as the exact Heap call body (user_id as a JSON number)."""
    batch, env = detail.batch, detail.environment
    sample = session.exec(
        select(Subject)
        .where(Subject.batch_id == batch.id, Subject.classification == RowClass.VALID.value)
        .order_by(Subject.row_number)
        .limit(PREVIEW_USERS)
    ).all()
    users = []
    for subject in sample:
        value = identifier(subject)
        if value is not None:
            users.append({subject.kind: int(value) if subject.kind == "user_id" else value})
    call = None
    if users:
        hosts = resolve_hosts(env.region, env.base_url)
        call = build_call("delete_users", hosts=hosts, app_id=env.app_id, users=users)
    kinds = dict(
        session.exec(
            select(Subject.kind, sa.func.count())
            .where(Subject.batch_id == batch.id, Subject.classification == RowClass.VALID.value)
            .group_by(Subject.kind)
        ).all()
    )
    warnings = session.exec(
        select(sa.func.count()).where(Subject.batch_id == batch.id, Subject.warning.is_not(None))
    ).one()
    chunk_size = configured_chunk_size(current_app)
    return Preview(
        call=call,
        shown=len(users),
        total=batch.valid_count,
        chunk_size=chunk_size,
        warnings=warnings,
        kinds=kinds,
    )


@dataclass
class BatchPage:
    """The batch page: detail, the rows (searchable), the problems and, before approval, the
    preview of what will be sent."""

    detail: BatchDetail
    subjects: Page
    problems: Page
    preview: Preview | None
    search: str


def batch_page(
    session: Session, batch_id: int, *, page: int = 1, problems_page: int = 1, search: str = ""
) -> BatchPage:
    """Everything the batch page shows, in one call."""
    detail = batch_detail(session, batch_id)
    awaiting = detail.batch.state == BatchState.AWAITING_APPROVAL
    return BatchPage(
        detail=detail,
        subjects=subjects_page(session, batch_id, page=page, search=search),
        problems=subjects_page(session, batch_id, page=problems_page, problems_only=True),
        preview=preview(session, detail) if awaiting else None,
        search=(search or "").strip(),
    )
