"""Page times through the Flask test client on a migrated SQLite database with seeded data.

Seed: 1,000 batches (every state; 10 subjects each, deadlines spread around today, Heap
requests with deletion ids for the submitted ones) and two 10,000-subject batches uploaded
through the real service, one awaiting approval (the preview) and one being polled. Each
figure is the best of 5 requests after one warm-up request.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet

from .bench_upload import make_app, sample_csv

LIMIT_MS = 150.0
RUNS = 5
SMALL_BATCHES = 1_000
SUBJECTS_PER_SMALL_BATCH = 10
PASSWORD = "bench officer passphrase 42"
STATES = ["awaiting_approval", "approved", "polling", "complete", "failed", "waiting_retry",
          "rejected", "cancelled", "complete", "complete"]  # fmt: skip


def _app(folder: Path):
    from webapp import migrations

    path = folder / "pages.db"
    migrations.upgrade(f"sqlite:///{path}")
    return make_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(folder / "instance"),
            "DATABASE_URL": f"sqlite:///{path}",
            "SECRET_KEY": "bench-secret-key-0123456789",
            "DESK_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
            "DESK_FINGERPRINT_KEY": "bench-fingerprint-key-0123456789",
            "ARGON2_PARAMS": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
            "DESK_2FA_REQUIRED_ROLES": "",  # the benchmark signs in with a password only
        }
    )


def _people_and_environment(session) -> None:
    from webapp import environments
    from webapp.accounts import users as accounts

    for email in ("ada@example.org", "ben@example.org"):
        accounts.create_user(session, actor="bench", email=email, password=PASSWORD, role="officer")
    session.commit()
    environments.create_environment(
        session,
        actor="bench",
        data=environments.EnvironmentInput(
            name="Main Production", app_id="1", main_production=True, api_key="k" * 20
        ),
    )


def _seed_small_batches(session) -> None:
    """1,000 batches in every state, inserted directly (the service is timed elsewhere)."""
    from webapp.models import Batch, HeapDeletionId, HeapRequest, Subject, utcnow

    rng = random.Random(7)
    today = utcnow().date()
    now = utcnow()
    for n in range(SMALL_BATCHES):
        state = STATES[n % len(STATES)]
        sent = state in {"polling", "complete"}
        batch = Batch(
            environment_id=1, state=state, file_sha256=uuid.uuid4().hex * 2,
            received_on=today - timedelta(days=rng.randint(0, 40)), filename=f"list-{n}.csv",
            rows_total=SUBJECTS_PER_SMALL_BATCH, valid_count=SUBJECTS_PER_SMALL_BATCH,
            completed_count=SUBJECTS_PER_SMALL_BATCH if state == "complete" else 0,
            uploaded_by=1 + n % 2, created_at=now - timedelta(minutes=SMALL_BATCHES - n),
            last_error="Heap answered 503" if state in {"failed", "waiting_retry"} else None,
        )  # fmt: skip
        session.add(batch)
        session.flush()
        chunk_id = None
        if sent:
            chunk = HeapRequest(
                batch_id=batch.id, chunk_index=1, subject_count=SUBJECTS_PER_SMALL_BATCH,
                payload_sha256="0" * 64, state="complete" if state == "complete" else "accepted",
                deletion_request_id=str(uuid.uuid4()), heap_status="pending", attempts=1,
                stale=n % 97 == 0,
            )  # fmt: skip
            session.add(chunk)
            session.flush()
            session.add(
                HeapDeletionId(
                    heap_request_id=chunk.id, deletion_request_id=chunk.deletion_request_id,
                    accepted_at=now,
                )
            )  # fmt: skip
            chunk_id = chunk.id
        received = batch.received_on
        subject_state = "complete" if state == "complete" else ("submitted" if sent else "pending")
        session.execute(
            sa.insert(Subject.__table__),
            [
                {
                    "batch_id": batch.id, "environment_id": 1, "row_number": row,
                    "kind": "user_id", "fingerprint": uuid.uuid4().hex * 2,
                    "identifier_encrypted": None, "classification": "valid",
                    "received_on": received, "due_on": received + timedelta(days=30),
                    "extension_months": 0, "heap_request_id": chunk_id,
                    "state": subject_state,
                }
                for row in range(1, SUBJECTS_PER_SMALL_BATCH + 1)
            ],
        )  # fmt: skip
    session.commit()


def _big_batches(app) -> tuple[int, int]:
    """Two 10,000-subject uploads by Ada: one left awaiting approval, one being polled."""
    from webapp.db import session_scope
    from webapp.erasure import batches
    from webapp.models import Batch, HeapDeletionId, HeapRequest, Subject, utcnow

    ids = []
    for offset in (0, 1):
        with app.app_context(), session_scope(write=True) as session:
            batch, _ = batches.create_batch(
                session, actor="ada@example.org", environment_id=1,
                data=sample_csv(offset=offset * 100_000),
            )  # fmt: skip
            ids.append(batch.id)
    with app.app_context(), session_scope(write=True) as session:
        polled = session.get(Batch, ids[1])
        polled.state, polled.approved_by, polled.submitted_at = "polling", 2, utcnow()
        chunk = HeapRequest(
            batch_id=polled.id, chunk_index=1, subject_count=polled.valid_count,
            payload_sha256="0" * 64, state="accepted", deletion_request_id=str(uuid.uuid4()),
            heap_status="pending", attempts=1, last_polled_at=utcnow(),
        )  # fmt: skip
        session.add(chunk)
        session.flush()
        session.add(
            HeapDeletionId(
                heap_request_id=chunk.id, deletion_request_id=chunk.deletion_request_id,
                accepted_at=utcnow(),
            )
        )  # fmt: skip
        session.execute(
            sa.update(Subject)
            .where(Subject.batch_id == polled.id, Subject.state == "pending")
            .values(state="submitted", heap_request_id=chunk.id)
        )
        session.commit()
    return ids[0], ids[1]


def _best_ms(client, path: str) -> float:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return min(times)


def run() -> list[dict]:
    """Batch detail (preview and polling) of 10,000 subjects, and the dashboard."""
    from webapp.db import session_scope

    with tempfile.TemporaryDirectory() as folder:
        app = _app(Path(folder))
        with app.app_context(), session_scope(write=True) as session:
            _people_and_environment(session)
            _seed_small_batches(session)
        awaiting, polling = _big_batches(app)
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        client.post(
            "/login", data={"email": "ben@example.org", "password": PASSWORD, "csrf_token": token}
        )
        figures = [
            ("batch page, 10,000 subjects awaiting approval (preview)", f"/batches/{awaiting}"),
            ("batch page, 10,000 subjects being polled", f"/batches/{polling}"),
            ("dashboard with 1,002 batches", "/dashboard"),
            ("batch list, first page of 1,002", "/batches"),
        ]
        results = [(name, _best_ms(client, path)) for name, path in figures]
        app.extensions["desk_engine"].dispose()
    return [
        {"name": name, "value": value, "unit": "ms", "limit": LIMIT_MS, "ok": value <= LIMIT_MS}
        for name, value in results
    ]
