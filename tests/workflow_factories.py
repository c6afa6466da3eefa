"""Factories for workflow tests and benchmarks: environments on the sandbox, batches, chunks.

They write the models directly (not through the upload code), so submission and polling are
tested on their own. Identifiers are generated, encrypted and fingerprinted as intake does.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlmodel import select

from webapp import environments
from webapp.crypto import encrypt, subject_fingerprint
from webapp.db import session_scope
from webapp.erasure.manifest import Manifest
from webapp.models import (
    Batch,
    BatchState,
    ChunkState,
    HeapDeletionId,
    HeapRequest,
    RowClass,
    Subject,
    SubjectState,
    User,
    utcnow,
)
from webapp.sandbox import SandboxServer
from webapp.trail import audit

Identifier = tuple[str, str]  # (kind, value): ("identity", "a@b.org") or ("user_id", "42")


def identifiers(count: int, *, start: int = 0, user_id_every: int = 5) -> list[Identifier]:
    """`count` distinct subjects; every `user_id_every`-th one is a Heap user_id."""
    made = []
    for number in range(start, start + count):
        if user_id_every and number % user_id_every == 0:
            made.append(("user_id", str(7_000_000 + number)))
        else:
            made.append(("identity", f"person{number}@example.org"))
    return made


def as_heap_user(identifier: Identifier) -> dict[str, Any]:
    """The element Heap's deletion body carries for a subject."""
    kind, value = identifier
    return {"user_id": int(value)} if kind == "user_id" else {"identity": value}


def make_uploader(app: Flask) -> int:
    """An officer account to own batches (inserted directly: no password hashing needed)."""
    with app.app_context(), session_scope(write=True) as session:
        user = User(
            email=f"uploader-{uuid.uuid4().hex[:8]}@example.org",
            password_hash="!",
            role="officer",
        )
        session.add(user)
        session.commit()
        return user.id


def make_environment(app: Flask, sandbox: SandboxServer, *, api_key: str | None = None) -> int:
    """The Main Production environment, pointed at the sandbox (through the real service)."""
    with app.app_context(), session_scope(write=True) as session:
        env = environments.create_environment(
            session,
            actor="factory@example.org",
            data=environments.EnvironmentInput(
                name=f"Sandbox {uuid.uuid4().hex[:6]}",
                app_id=sandbox.app_id,
                base_url=sandbox.url,
                main_production=True,
                api_key=api_key or sandbox.api_key,
            ),
        )
        return env.id


def make_batch(
    app: Flask,
    environment_id: int,
    subjects: list[Identifier],
    *,
    state: BatchState = BatchState.APPROVED,
    uploaded_by: int | None = None,
) -> int:
    """A batch of valid subjects in `state` (approved: ready for the submission job)."""
    uploaded_by = uploaded_by or make_uploader(app)
    received = date.today()
    with app.app_context(), session_scope(write=True) as session:
        # The manifest of its subjects; past approval, the one its approver approved.
        manifest = Manifest.of(subject_fingerprint(kind, value) for kind, value in subjects)
        approved = state not in (BatchState.AWAITING_APPROVAL, BatchState.REJECTED)
        batch = Batch(
            environment_id=environment_id,
            state=state.value,
            file_sha256=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
            received_on=received,
            rows_total=len(subjects),
            valid_count=len(subjects),
            uploaded_by=uploaded_by,
            approved_at=utcnow() if state != BatchState.AWAITING_APPROVAL else None,
            manifest_count=manifest.count,
            manifest_sha256=manifest.sha256,
            approved_manifest_sha256=manifest.sha256 if approved else None,
        )
        session.add(batch)
        session.flush()
        rows = [
            {
                "batch_id": batch.id,
                "environment_id": environment_id,
                "row_number": number,
                "kind": kind,
                "fingerprint": subject_fingerprint(kind, value),
                "identifier_encrypted": encrypt(value),
                "classification": RowClass.VALID.value,
                "received_on": received,
                "due_on": received + timedelta(days=30),
                "state": SubjectState.PENDING.value,
            }
            for number, (kind, value) in enumerate(subjects, 1)
        ]
        if rows:
            session.exec(sa.insert(Subject), params=rows)
        session.commit()
        return batch.id


def seed_sandbox(sandbox: SandboxServer, subjects: list[Identifier]) -> None:
    """Give each subject data in the sandbox, so a test can see it really erased."""
    state = sandbox.state
    with state.lock:
        env = state.environment(sandbox.app_id)
        for kind, value in subjects:
            env.track({"event": "Signed up", kind: value}, state.clock())


def sandbox_subjects_left(sandbox: SandboxServer) -> int:
    """How many users (identified and anonymous) the sandbox still holds."""
    state = sandbox.state
    with state.lock:
        state.advance()
        env = state.environments.get(sandbox.app_id)
        return 0 if env is None else len(env.users) + len(env.anonymous)


def make_accepted_chunks(
    app: Flask,
    sandbox: SandboxServer | None,
    environment_id: int,
    *,
    chunks: int,
    per_chunk: int = 1,
    start: int = 0,
    create: Callable[[list[dict[str, Any]]], str] | None = None,
) -> int:
    """A batch in `polling` whose chunks Heap has accepted; returns its id.

    `create` makes a deletion request and returns its id (default: straight into the
    in-process sandbox's state; the benchmark passes a real POST to a sandbox process).
    """
    if create is None:

        def create(users: list[dict[str, Any]]) -> str:
            return sandbox.state.create_deletion(sandbox.app_id, users).deletion_request_id

    subjects = identifiers(chunks * per_chunk, start=start)
    batch_id = make_batch(app, environment_id, subjects, state=BatchState.POLLING)
    now = utcnow()
    with app.app_context(), session_scope(write=True) as session:
        subject_ids = session.exec(
            select(Subject.id).where(Subject.batch_id == batch_id).order_by(Subject.id)
        ).all()
        for index in range(chunks):
            part = slice(index * per_chunk, (index + 1) * per_chunk)
            users = [as_heap_user(subject) for subject in subjects[part]]
            request_id = create(users)
            chunk = HeapRequest(
                batch_id=batch_id,
                chunk_index=index + 1,
                subject_count=len(users),
                payload_sha256="0" * 64,
                state=ChunkState.ACCEPTED.value,
                deletion_request_id=request_id,
                heap_status="pending",
                attempts=1,
                sent_at=now,
                accepted_at=now,
                next_poll_at=now,
            )
            session.add(chunk)
            session.flush()
            session.add(
                HeapDeletionId(
                    heap_request_id=chunk.id,
                    deletion_request_id=request_id,
                    status="pending",
                    accepted_at=now,
                )
            )
            session.exec(
                sa.update(Subject)
                .where(Subject.id.in_(subject_ids[part]))
                .values(heap_request_id=chunk.id, state=SubjectState.SUBMITTED.value)
            )
        session.commit()
    return batch_id


def chain_ok(app: Flask) -> bool:
    """True when the whole audit trail verifies."""
    with app.app_context(), session_scope(write=False) as session:
        return audit.verify(session).ok


def actions(app: Flask, prefix: str = "") -> list[str]:
    """The audit trail's actions in order (optionally only those starting with `prefix`)."""
    with app.app_context(), session_scope(write=False) as session:
        return [
            entry["action"]
            for entry in audit.iter_entries(session)
            if entry["action"].startswith(prefix)
        ]


# --- reading the outcome ------------------------------------------------------------------


def batch_of(app: Flask, batch_id: int) -> Batch:
    """The batch as stored now."""
    with app.app_context(), session_scope(write=False) as session:
        return session.get(Batch, batch_id)


def chunks_of(app: Flask, batch_id: int) -> list[HeapRequest]:
    """The batch's chunks as stored now, in order."""
    with app.app_context(), session_scope(write=False) as session:
        query = select(HeapRequest).where(HeapRequest.batch_id == batch_id)
        return list(session.exec(query.order_by(HeapRequest.chunk_index)).all())


def subject_states(app: Flask, batch_id: int) -> dict[str, int]:
    """How many of the batch's subjects are in each state."""
    with app.app_context(), session_scope(write=False) as session:
        rows = session.exec(
            select(Subject.state, sa.func.count())
            .where(Subject.batch_id == batch_id)
            .group_by(Subject.state)
        ).all()
        return dict(rows)


def kept_ids(app: Flask) -> list[HeapDeletionId]:
    """Every deletion_request_id the desk has kept."""
    with app.app_context(), session_scope(write=False) as session:
        return list(session.exec(select(HeapDeletionId).order_by(HeapDeletionId.id)).all())


def audit_entries(app: Flask, action: str | None = None) -> list[dict]:
    """Audit entries (optionally of one action), oldest first."""
    with app.app_context(), session_scope(write=False) as session:
        entries = list(audit.iter_entries(session))
    return [entry for entry in entries if action is None or entry["action"] == action]


def deletion_posts(sandbox: SandboxServer) -> list[dict]:
    """The sandbox's log entries of deletion POSTs (status, body), oldest first."""
    with sandbox.state.lock:
        return [
            dict(entry)
            for entry in sandbox.state.requests
            if entry["method"] == "POST" and entry["path"].endswith("/user_deletion")
        ]


def sandbox_deletions(sandbox: SandboxServer) -> list[dict]:
    """Every deletion request the sandbox (Heap) holds."""
    with sandbox.state.lock:
        sandbox.state.advance()
        return [record.to_json() for record in sandbox.state.deletions.values()]


def polls_by_request(heap) -> dict[str, list[float]]:
    """When each deletion request was polled (sandbox clock, seconds)."""
    seen = defaultdict(list)
    with heap.state.lock:
        for entry in heap.state.requests:
            if "/deletion_status/" in entry["path"]:
                seen[entry["path"].rsplit("/", 1)[1]].append(entry["t"])
    return dict(seen)
