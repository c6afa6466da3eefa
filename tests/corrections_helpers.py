"""Fixtures and helpers shared by the corrections tests: an environment on the sandbox, a pacer
on the sandbox's clock, and deletion subjects for the re-ingestion guard."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from sqlmodel import select

from webapp import environments
from webapp.accounts import users as accounts
from webapp.corrections.pacing import Pacer
from webapp.crypto import encrypt, subject_fingerprint
from webapp.db import session_scope
from webapp.models import AuditEntry, Batch, Subject

__all__ = [
    "audit_details",
    "deleted_subject",
    "heap_env",
    "make_env",
    "paced",
    "sandbox_data",
]


@pytest.fixture
def paced(app, sandbox_clock) -> Pacer:
    """The app's pacer on the sandbox's clock: waiting moves time instead of sleeping."""
    pacer = Pacer(clock=sandbox_clock, sleep=sandbox_clock.advance)
    app.extensions["desk_pacer"] = pacer
    return pacer


def make_env(app, sandbox, name: str = "Sandbox", account_property: str | None = "account_id"):
    """Register an environment pointing at the sandbox; return its id."""
    data = environments.EnvironmentInput(
        name=name, app_id=sandbox.app_id, base_url=sandbox.url, account_property=account_property
    )
    with app.app_context(), session_scope(write=True) as session:
        return environments.create_environment(session, actor="test", data=data).id


@pytest.fixture
def heap_env(app, sandbox, paced) -> int:
    """An environment on the sandbox with account property `account_id`."""
    return make_env(app, sandbox)


def deleted_subject(
    app, environment_id: int, kind: str, value: str, *, state: str = "polling"
) -> int:
    """A valid subject in a batch of `state` (what the workflow creates); returns the batch id."""
    with app.app_context(), session_scope(write=True) as session:
        user = accounts.find_user(session, "uploader@example.org")
        if user is None:
            user = accounts.create_user(
                session,
                actor="test",
                email="uploader@example.org",
                password="correct horse battery staple",
                role="officer",
            )
        batch = Batch(
            environment_id=environment_id,
            state=state,
            file_sha256="0" * 64,
            received_on=date(2025, 1, 2),
            uploaded_by=user.id,
            rows_total=1,
            valid_count=1,
        )
        session.add(batch)
        session.flush()
        session.add(
            Subject(
                batch_id=batch.id,
                environment_id=environment_id,
                row_number=1,
                kind=kind,
                fingerprint=subject_fingerprint(kind, value),
                identifier_encrypted=encrypt(value),
                classification="valid",
                received_on=date(2025, 1, 2),
                due_on=date(2025, 2, 2),
            )
        )
        session.commit()
        return batch.id


def sandbox_data(sandbox) -> dict[str, Any]:
    """The sandbox environment's users, anonymous users and accounts."""
    return sandbox.state.snapshot()["environments"].get(sandbox.app_id, {})


def audit_details(app, prefix: str = "correction.") -> list[tuple[str, dict]]:
    """(action, details) of the audit entries whose action starts with `prefix`."""
    with app.app_context(), session_scope(write=False) as session:
        rows = session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()
        return [(r.action, json.loads(r.details)) for r in rows if r.action.startswith(prefix)]
