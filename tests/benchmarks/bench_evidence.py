"""Evidence benchmarks on SQLite: the certificate, report and evidence pack of a 10,000-subject
batch that Heap completed, in a trail of 100,000 entries.

The batch is written with the models directly (one Heap request of 10,000 users, its audit
history through audit.record); the timings cover reading everything from the database.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from tests.benchmarks.bench_audit import bench_app, seed_sqlite
from webapp.crypto import encrypt, subject_fingerprint
from webapp.db import session_scope
from webapp.evidence import certificates, checkpoints
from webapp.evidence import reports as evidence_reports
from webapp.evidence.pack import evidence_pack
from webapp.models import Batch, Environment, HeapDeletionId, HeapRequest, Subject, User, utcnow
from webapp.trail import audit

SUBJECTS, CHAIN = 10_000, 100_000


def _batch(app) -> int:
    """A complete batch of SUBJECTS identities with its Heap request and audit history."""
    now, received = utcnow(), date.today() - timedelta(days=10)
    with app.app_context(), session_scope(write=True) as session:
        user = User(email="officer@example.org", password_hash="!", role="officer")
        env = Environment(name="Main Production", app_id="3000610572", main_production=True)
        session.add_all([user, env])
        session.flush()
        batch = Batch(
            environment_id=env.id,
            state="complete",
            file_sha256=hashlib.sha256(b"bench").hexdigest(),
            received_on=received,
            rows_total=SUBJECTS,
            valid_count=SUBJECTS,
            completed_count=SUBJECTS,
            uploaded_by=user.id,
            approved_by=user.id,
            approved_at=now,
            submitted_at=now,
            completed_at=now,
        )
        session.add(batch)
        session.flush()
        chunk = HeapRequest(
            batch_id=batch.id,
            chunk_index=1,
            subject_count=SUBJECTS,
            payload_sha256="0" * 64,
            state="complete",
            deletion_request_id="5f1c3a7e-0000-4000-8000-000000000001",
            heap_status="complete",
            accepted_at=now,
            completed_at=now,
        )
        session.add(chunk)
        session.flush()
        session.add(
            HeapDeletionId(
                heap_request_id=chunk.id,
                deletion_request_id=chunk.deletion_request_id,
                status="complete",
                accepted_at=now,
                completed_at=now,
            )
        )
        values = [f"person{n}@example.org" for n in range(SUBJECTS)]
        session.exec(
            sa.insert(Subject),
            params=[
                {
                    "batch_id": batch.id,
                    "environment_id": env.id,
                    "row_number": n + 1,
                    "kind": "identity",
                    "fingerprint": subject_fingerprint("identity", value),
                    "identifier_encrypted": encrypt(value),
                    "classification": "valid",
                    "received_on": received,
                    "due_on": received + timedelta(days=30),
                    "state": "complete",
                    "heap_request_id": chunk.id,
                    "submitted_at": now,
                    "completed_at": now,
                }
                for n, value in enumerate(values)
            ],
        )
        for action, target, target_id in [
            ("batch.uploaded", "batch", batch.id),
            ("batch.approved", "batch", batch.id),
            ("heap_request.planned", "heap_request", chunk.id),
            ("heap_request.accepted", "heap_request", chunk.id),
            ("heap_request.status_changed", "heap_request", chunk.id),
            ("batch.completed", "batch", batch.id),
        ]:
            audit.record(
                session,
                actor="officer@example.org",
                action=action,
                target_type=target,
                target_id=target_id,
                details={"batch_id": batch.id},
            )
        session.commit()
        return batch.id


def _timed(func) -> tuple[float, object]:
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def run() -> list[dict]:
    """The figures: certificate, report and pack of a 10,000-subject batch."""
    with tempfile.TemporaryDirectory() as tmp, bench_app(Path(tmp)) as app:
        seed_sqlite(Path(tmp) / "bench.db", CHAIN - 7)
        batch_id = _batch(app)
        with app.app_context(), session_scope(write=True) as session:
            checkpoints.sign_checkpoint(session, actor="bench")

        def certificate() -> bytes:
            with app.app_context(), session_scope(write=False) as session:
                return certificates.issue_batch_certificate(session, batch_id)

        cert_seconds, pdf = _timed(certificate)
        report_seconds, size = _timed(
            lambda: sum(len(c) for c in evidence_reports.batch_report(app, batch_id))
        )
        pack_seconds, pack_size = _timed(lambda: sum(len(c) for c in evidence_pack(app, batch_id)))
    return [
        {
            "name": "certificate of a 10,000-subject batch",
            "value": cert_seconds,
            "unit": "s",
            "limit": 3,
            "ok": cert_seconds <= 3,
            "note": f"{len(pdf) / 1024:.0f} KiB PDF, fonts embedded",
        },
        {
            "name": "report CSV of a 10,000-subject batch",
            "value": report_seconds,
            "unit": "s",
            "limit": 3,
            "ok": report_seconds <= 3,
            "note": f"{size / 1e6:.1f} MB, identifiers decrypted",
        },
        {
            "name": "evidence pack of that batch (chain of 100,000 entries)",
            "value": pack_seconds,
            "unit": "s",
            "limit": 15,
            "ok": pack_seconds <= 15,
            "note": f"{pack_size / 1e6:.1f} MB zip, streamed",
        },
    ]
