"""Fixtures for the evidence tests: a batch carried through the real workflow, a signing key.

`finished_batch` uploads a CSV through the batch service, has a second officer approve it, sends
it to the Heap sandbox with the submission job and polls it to completion: the audit trail it
leaves is the one the evidence must prove.
"""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session, select
from workflow_factories import make_environment

from webapp.db import get_engine, session_scope
from webapp.erasure import batches, polling, submission
from webapp.models import AuditEntry, Batch, HeapDeletionId, Subject, utcnow
from webapp.trail import audit, tree

__all__ = [
    "FinishedBatch",
    "finished_batch",
    "head_of",
    "run_verifier",
    "seed",
    "seed_chain",
    "signing_key_env",
    "subjects_of",
    "unzip",
]

# Identities a certificate and a report must carry intact: non-Latin scripts, and values a
# spreadsheet would run as formulas.
IDENTITIES = [
    "anna.schmidt@example.org",
    "Дмитрий.Иванов@пример.рф",
    "山田太郎@例え.jp",
    '=HYPERLINK("http://evil.example","x")',
    "+31 6 1234 5678",
    "-2+3",
    "@SUM(A1:A9)",
]
USER_IDS = ["7000123", "7000456"]


@pytest.fixture
def signing_key_env(monkeypatch) -> str:
    """A DESK_SIGNING_KEY (base64 of the raw key), as PostgreSQL installs must set it."""
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    value = base64.b64encode(raw).decode()
    monkeypatch.setenv("DESK_SIGNING_KEY", value)
    return value


@dataclass
class FinishedBatch:
    """A batch Heap completed, with who uploaded and approved it."""

    id: int
    environment_id: int
    uploader: str
    approver: str
    deletion_request_ids: list[str]


def _csv() -> bytes:
    lines = ["identity,user_id"]
    lines += [f'"{value.replace(chr(34), chr(34) * 2)}",' for value in IDENTITIES]
    lines += [f",{value}" for value in USER_IDS]
    lines += ["anna.schmidt@example.org,"]  # a duplicate row, never sent
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


@pytest.fixture
def finished_batch(app, sandbox, make_user, signing_key_env) -> FinishedBatch:
    """Upload → four-eyes approval → submission to the sandbox → polled to completion."""
    env_id = make_environment(app, sandbox)
    uploader, approver = make_user("officer"), make_user("officer")
    with app.app_context(), session_scope(write=True) as session:
        batch, _ = batches.create_batch(
            session,
            actor=uploader,
            environment_id=env_id,
            data=_csv(),
            filename="erasure-requests.csv",
            reference="DSR-2026-114",
        )
        batch_id = batch.id
    with app.app_context(), session_scope(write=True) as session:
        batches.approve(session, actor=approver, batch_id=batch_id)
    submission.submit_due(app)
    later = utcnow() + timedelta(hours=1)
    for step in range(1, 4):
        polling.poll_due(app, now=later + timedelta(hours=step))
    with app.app_context(), session_scope(write=False) as session:
        batch = session.get(Batch, batch_id)
        assert batch.state == "complete", (batch.state, batch.last_error)
        ids = session.exec(select(HeapDeletionId.deletion_request_id)).all()
    return FinishedBatch(batch_id, env_id, uploader, approver, list(ids))


def seed_chain(
    connection,
    count: int,
    *,
    start_seq: int = 1,
    prev_hash: str | None = None,
    start_at: datetime | None = None,
    step: timedelta = timedelta(seconds=1),
) -> tuple[int, str]:
    """Append `count` chained entries in one multi-row INSERT: seeding 100,000 takes seconds.

    The rows are what audit.record would write (canonical details, hashes chained, one `step`
    apart from `start_at`), so the chain verifies; returns the last (seq, hash).
    """
    prev = prev_hash or audit.GENESIS_HASH
    moment = start_at or utcnow()
    rows = []
    for seq in range(start_seq, start_seq + count):
        entry = {
            "seq": seq,
            "at": audit.format_at(moment),
            "actor": "seeder",
            "action": "test.seeded",
            "target_type": "test",
            "target_id": str(seq % 1000),
            "details": {"n": seq, "fingerprint": "ab" * 32},
            "prev_hash": prev,
        }
        prev = audit.entry_hash(entry)
        rows.append({**entry, "details": audit.canonical_json(entry["details"]), "hash": prev})
        moment += step
    connection.execute(sa.insert(AuditEntry.__table__), rows)
    # The Merkle tree grows with the trail, as audit.record grows it.
    with Session(bind=connection) as session:
        tree.build(session)
        session.flush()
    return start_seq + count - 1, prev


def seed(app, count: int, **options) -> tuple[int, str]:
    """seed_chain after the current head, in a transaction of its own."""
    seq, head = head_of(app)
    with app.app_context(), get_engine().begin() as connection:
        return seed_chain(connection, count, start_seq=seq + 1, prev_hash=head, **options)


def head_of(app) -> tuple[int, str]:
    """(seq, hash) of the chain's head."""
    with app.app_context(), get_engine().connect() as connection:
        row = connection.execute(
            sa.select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
        ).first()
    return (row[0], row[1]) if row else (0, audit.GENESIS_HASH)


def unzip(data: bytes, folder: Path) -> Path:
    """Extract a zip into `folder` and return it."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(folder)
    return folder


def run_verifier(folder: Path) -> subprocess.CompletedProcess:
    """Run the pack's own verify.py as an outside auditor would."""
    return subprocess.run(
        [sys.executable, "verify.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def subjects_of(app, batch_id: int) -> list[Subject]:
    """The batch's rows in file order."""
    with app.app_context(), session_scope(write=False) as session:
        query = select(Subject).where(Subject.batch_id == batch_id).order_by(Subject.row_number)
        return list(session.exec(query).all())
