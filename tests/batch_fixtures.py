"""Fixtures shared by the batch, lookup and deadline tests: an environment, uploads, counts,
and a quick stand-in for the scheduler."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from webapp import environments
from webapp.db import session_scope
from webapp.erasure import batches
from webapp.erasure.polling import poll_due
from webapp.erasure.submission import submit_due
from webapp.models import AuditEntry, Batch, HeapRequest, Subject, SubjectState, utcnow

__all__ = ["complete_batch", "env_id", "make_env", "table_counts", "upload"]


class Scheduler(threading.Thread):
    """What `desk scheduler` does, quickly: submit what is approved, poll what is open."""

    def __init__(self, app, sandbox_clock) -> None:
        super().__init__(daemon=True)
        self.app, self.clock, self.done = app, sandbox_clock, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            submit_due(self.app)
            self.clock.advance(3600)  # the sandbox completes deletions as time passes
            poll_due(self.app, now=utcnow() + timedelta(days=1))


@pytest.fixture
def make_env(app) -> Callable[..., int]:
    """Register a Heap environment: make_env(name=..., main_production=True) → its id."""
    counter = iter(range(1, 1000))

    def make(
        name: str | None = None,
        main_production: bool = True,
        base_url: str | None = None,
        app_id: str = "3000610572",
        api_key: str = "test-api-key-0123456789",
    ) -> int:
        data = environments.EnvironmentInput(
            name=name or f"Main Production {next(counter)}",
            app_id=app_id,
            main_production=main_production,
            api_key=api_key if main_production else None,
            base_url=base_url,
        )
        with app.app_context(), session_scope(write=True) as session:
            return environments.create_environment(session, actor="test", data=data).id

    return make


@pytest.fixture
def env_id(make_env) -> int:
    return make_env("Main Production")


@pytest.fixture
def upload(app, env_id) -> Callable[..., int]:
    """Store an upload through the service: upload(actor, csv_text, **options) → batch id."""

    def run(actor: str, text: str | bytes, *, environment_id: int | None = None, **options) -> int:
        data = text.encode() if isinstance(text, str) else text
        with app.app_context(), session_scope(write=True) as session:
            batch, _ = batches.create_batch(
                session,
                actor=actor,
                environment_id=environment_id or env_id,
                data=data,
                filename="list.csv",
                **options,
            )
            return batch.id

    return run


@pytest.fixture
def table_counts(app) -> Callable[[], tuple[int, int, int]]:
    """(batches, subjects, audit entries) now: to prove a refusal stored nothing."""

    def count() -> tuple[int, int, int]:
        with app.app_context(), session_scope(write=False) as session:
            return tuple(
                session.exec(select(sa.func.count()).select_from(model)).one()
                for model in (Batch, Subject, AuditEntry)
            )

    return count


@pytest.fixture
def complete_batch(app) -> Callable[[int], None]:
    """Mark every valid subject of a batch complete in one Heap request, as polling would."""

    def run(batch_id: int, *, deletion_request_id: str = "0b6c7c8e-1111-4222-8333-944445555666"):
        from webapp.models import HeapDeletionId

        now = utcnow()
        with app.app_context(), session_scope(write=True) as session:
            batch = session.get(Batch, batch_id)
            chunk = HeapRequest(
                batch_id=batch_id,
                chunk_index=1,
                subject_count=batch.valid_count,
                payload_sha256="0" * 64,
                state="complete",
                deletion_request_id=deletion_request_id,
                heap_status="complete",
                attempts=1,
                sent_at=now,
                accepted_at=now,
                last_polled_at=now,
                completed_at=now,
            )
            session.add(chunk)
            session.flush()
            session.add(
                HeapDeletionId(
                    heap_request_id=chunk.id,
                    deletion_request_id=deletion_request_id,
                    status="complete",
                    accepted_at=now,
                    last_polled_at=now,
                    completed_at=now,
                )
            )
            session.exec(
                sa.update(Subject)
                .where(Subject.batch_id == batch_id, Subject.state == SubjectState.PENDING.value)
                .values(
                    state=SubjectState.COMPLETE.value,
                    heap_request_id=chunk.id,
                    submitted_at=now,
                    completed_at=now,
                )
            )
            batch.state, batch.submitted_at, batch.completed_at = "complete", now, now
            batch.completed_count = batch.valid_count
            session.commit()

    return run


def today() -> date:
    return utcnow().date()
