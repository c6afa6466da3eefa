"""The erasure workflow under faults: a hostile Heap, a database outage, a killed scheduler.

tests/erasure/test_submission.py, tests/erasure/test_polling.py and tests/jobs/test_scheduler.py
inject one failure at a time; here everything happens at once to a 10,000-subject batch, the
database goes away mid-poll, and a real `desk scheduler` process is SIGKILLed while another
waits for its lease.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from conftest import ON_POSTGRES
from sqlalchemy.engine import make_url
from sqlmodel import select
from workflow_factories import (
    audit_entries,
    batch_of,
    chain_ok,
    chunks_of,
    identifiers,
    kept_ids,
    make_accepted_chunks,
    make_batch,
    make_environment,
    polls_by_request,
    sandbox_deletions,
    seed_sandbox,
    subject_states,
)

from webapp.db import session_scope
from webapp.erasure import polling, submission
from webapp.erasure.lifecycle import SUBMITTABLE
from webapp.heap import HeapClient
from webapp.lease import LEASE_NAME
from webapp.models import (
    Batch,
    BatchState,
    ChunkState,
    HeapRequest,
    SchedulerLease,
    Subject,
    utcnow,
)
from webapp.sandbox import start_sandbox

SEED = 20_250_607
SUBJECTS = 10_000
CHUNK = 500
FAILING_SUBJECTS = 40  # a second, small batch that Heap refuses for good
INTERVAL = 60
READ_TIMEOUT = 0.75
SLOW = 1.5  # seconds a slow answer takes: beyond the client's read timeout
MAX_TICKS = 300
RANDOM_FAULTS = ["429", "500", "502", "503", "504", "drop", "drop_after", "expire_token"]
# Scripted faults come first, in order, for the requests they match; dice decide the rest.
SCRIPTED_FAULTS = [
    # The first deletion POST (the small batch's only request) is refused for good.
    {"kind": "400", "path": "/user_deletion", "shape": "error", "message": "users: invalid"},
    {"kind": "429", "path": "/user_deletion", "retry_after": 120},  # waits 2 min (desk clock)
    {"kind": "429", "path": "/user_deletion", "retry_after": 1},  # the client waits in place
    {"kind": "slow_after", "path": "/user_deletion", "seconds": SLOW},  # done, answer too late
    {"kind": "slow", "path": "/user_deletion", "seconds": SLOW},  # done after the client gave up
    {"kind": "drop_after", "path": "/user_deletion"},  # done, connection dropped
    {"kind": "503", "path": "/user_deletion", "retry_after": 90},
    {"kind": "429", "path": "/deletion_status/", "retry_after": 300},
    {"kind": "slow", "path": "/deletion_status/", "seconds": SLOW, "times": 2},  # both tries
    {"kind": "drop", "path": "/auth_token", "times": 2},
]
OPEN_BATCHES = [s.value for s in SUBMITTABLE] + [BatchState.POLLING.value]


def _canonical(users: list[dict]) -> str:
    return json.dumps(users, sort_keys=True)


def _collect(heap, seen: dict[int, dict]) -> None:
    """Keep every logged sandbox request (its log holds only the last 500)."""
    with heap.state.lock:
        for entry in heap.state.requests:
            seen[entry["seq"]] = entry


def _next_due(app, now: datetime) -> datetime | None:
    """When the workflow next has something to do, or None when nothing is open."""
    grace = submission.sending_grace(app)
    slack = polling.poll_slack(INTERVAL)
    with app.app_context(), session_scope(write=False) as session:
        batches = session.exec(
            select(Batch.id, Batch.state, Batch.next_attempt_at).where(
                Batch.state.in_(OPEN_BATCHES)
            )
        ).all()
        if not batches:
            return None
        chunks = session.exec(
            select(
                HeapRequest.batch_id,
                HeapRequest.state,
                HeapRequest.next_attempt_at,
                HeapRequest.sent_at,
                HeapRequest.next_poll_at,
            ).where(HeapRequest.batch_id.in_([b.id for b in batches]))
        ).all()
    times = []
    for batch_id, state, batch_at in batches:
        mine = [c for c in chunks if c.batch_id == batch_id]
        if state in OPEN_BATCHES[:-1] and not mine:
            times.append(batch_at or now)  # approved, not planned yet
        for chunk in mine:
            if chunk.state in (ChunkState.QUEUED, ChunkState.WAITING_RETRY):
                times.append(max(batch_at or now, chunk.next_attempt_at or now))
            elif chunk.state == ChunkState.SENDING:
                times.append(chunk.sent_at + grace)
            elif chunk.state == ChunkState.ACCEPTED:
                times.append((chunk.next_poll_at or now) - slack)
    return min(times, default=now)


def _drive(app, heap, seen: dict[int, dict]) -> int:
    """Submit and poll tick after tick, moving the desk's clock to the next due moment."""
    now = utcnow()
    for tick in range(1, MAX_TICKS + 1):
        submission.submit_due(app, now=now)
        polling.poll_due(app, now=now)
        _collect(heap, seen)
        due = _next_due(app, now)
        if due is None:
            return tick
        now = max(due, now + timedelta(seconds=1))
    raise AssertionError(f"work still open after {MAX_TICKS} ticks: {_open_summary(app)}")


def _open_summary(app) -> dict:
    with app.app_context(), session_scope(write=False) as session:
        rows = session.exec(
            select(HeapRequest.state, sa.func.count()).group_by(HeapRequest.state)
        ).all()
    return dict(rows)


def _wait_for_stragglers(seen: dict[int, dict], timeout: float = 2 * SLOW + 2) -> None:
    """Slow answers are still being written after the client gave up: let them land."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(e["status"] is not None for e in seen.values() if e["fault"] != "drop"):
            return
        time.sleep(0.05)


def _unexplained(app) -> list[tuple]:
    """Valid subjects neither complete nor failed with a reason stored on their request."""
    with app.app_context(), session_scope(write=False) as session:
        rows = session.exec(
            select(Subject.id, Subject.state, HeapRequest.state, HeapRequest.last_error)
            .outerjoin(HeapRequest, HeapRequest.id == Subject.heap_request_id)
            .where(Subject.classification == "valid")
        ).all()
    return [
        row
        for row in rows
        if row[1] != "complete" and not (row[1] == row[2] == "failed" and row[3])
    ]


def _heap_holds(heap) -> set[str]:
    """The identifiers (identity or user_id) the sandbox still holds data about."""
    with heap.state.lock:
        heap.state.advance()
        env = heap.state.environments[heap.app_id]
        return set(env.users) | set(env.anonymous)


@pytest.mark.timeout(120)
def test_a_10000_subject_batch_under_random_heap_faults_loses_nothing(
    app, monkeypatch, sandbox_as_heap
):
    """20 requests of 500 while 30 % of Heap calls fail at random, after scripted faults."""
    app.config.update(
        DESK_CHUNK_SIZE=CHUNK,
        DESK_POLL_INTERVAL_SECONDS=INTERVAL,
        DESK_HEAP_TIMEOUT=(1.0, READ_TIMEOUT),
    )
    # Real clock: tokens live one second, so they expire between and within ticks.
    heap = start_sandbox(
        seed=SEED,
        token_ttl=1.0,
        complete_after=0.0,
        complete_after_polls=1,  # each request answers `pending` once, then `complete`
    )
    answered: list[str] = []
    real_delete = HeapClient.delete_users

    def delete_and_note(self, users):
        accepted = real_delete(self, users)
        answered.append(accepted.deletion_request_id)  # the desk has this answer in hand
        return accepted

    monkeypatch.setattr(HeapClient, "delete_users", delete_and_note)
    try:
        env_id = make_environment(app, heap)
        failing = identifiers(FAILING_SUBJECTS, start=SUBJECTS)
        everyone = identifiers(SUBJECTS)
        seed_sandbox(heap, everyone + failing)
        small = make_batch(app, env_id, failing)  # lower id: its request is the first POST
        big = make_batch(app, env_id, everyone)
        heap.add_faults(*SCRIPTED_FAULTS)
        heap.configure(fault_rate=0.3, fault_kinds=RANDOM_FAULTS)
        seen: dict[int, dict] = {}
        ticks = _drive(app, heap, seen)
        heap.configure(fault_rate=0.0)
        _wait_for_stragglers(seen)
        heap_requests = {r["deletion_request_id"]: r for r in sandbox_deletions(heap)}
        holds = _heap_holds(heap)
        pending_faults = list(heap.state.faults)
    finally:
        heap.stop()

    # The faults really happened: every scripted one, dozens of random ones, expired tokens.
    faults = Counter(entry["fault"] for entry in seen.values() if entry["fault"])
    assert pending_faults == []
    assert sum(faults.values()) >= len(SCRIPTED_FAULTS) + 20, faults
    assert any(entry["status"] == 401 for entry in seen.values()), "no token ever expired"
    assert min(seen) == 1 and len(seen) == max(seen)  # no sandbox request went unseen

    # Every subject ends complete, or failed with the reason Heap gave.
    assert _unexplained(app) == []
    assert subject_states(app, big) == {"complete": SUBJECTS}
    assert (batch_of(app, big).state, batch_of(app, big).completed_count) == ("complete", SUBJECTS)
    assert subject_states(app, small) == {"failed": FAILING_SUBJECTS}
    refused = batch_of(app, small)
    assert refused.state == "failed"
    assert refused.last_error.startswith("Heap refused request 1 of 1 for good")
    (chunk,) = chunks_of(app, small)
    assert (chunk.state, chunk.last_error) == (
        "failed",
        "Heap delete_users was rejected: users: invalid",
    )
    assert {c.state for c in chunks_of(app, big)} == {"complete"}
    assert len(chunks_of(app, big)) == SUBJECTS // CHUNK

    # No deletion id is lost: every answer the desk received is kept, every kept id is
    # Heap's, and each request whose answer never arrived was sent again and kept.
    kept = {row.deletion_request_id for row in kept_ids(app)}
    assert set(answered) == kept
    assert kept <= heap_requests.keys()
    unanswered = heap_requests.keys() - kept
    assert unanswered, "no answer was lost: the faults did not bite"
    kept_bodies = {_canonical(heap_requests[i]["users"]) for i in kept}
    assert {_canonical(heap_requests[i]["users"]) for i in unanswered} <= kept_bodies
    assert len(unanswered) <= len(audit_entries(app, "heap_request.outcome_unknown"))

    # Heap really erased every completed subject; only the refused batch's people remain.
    assert holds == {value for _, value in failing}
    assert chain_ok(app)
    print(
        f"\nfault suite: {ticks} ticks, {len(seen)} Heap calls, faults {dict(faults)}; "
        f"{len(kept)} ids kept, {len(unanswered)} requests whose answer was lost"
    )


# --- the database going away mid-poll ------------------------------------------------------

OUTAGE_CHUNKS = 12


def _first_status_call(sandbox, timeout: float = 10.0) -> None:
    """Wait until the poll run's first status request has reached Heap."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sandbox.state.lock:
            if any("/deletion_status/" in e["path"] for e in sandbox.state.requests):
                return
        time.sleep(0.01)
    raise AssertionError("the poll run never called Heap")


def _poll_during(app, sandbox, outage) -> tuple[int, float]:
    """Run one poll while `outage()` runs in a thread once Heap has the first call."""
    sandbox.configure(latency_ms=300)  # every answer takes 300 ms: the outage starts first
    problems: list[BaseException] = []

    def strike() -> None:
        try:
            _first_status_call(sandbox)
            outage()
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            problems.append(error)

    thread = threading.Thread(target=strike)
    thread.start()
    started = time.monotonic()
    polled = polling.poll_due(app, now=utcnow())
    took = time.monotonic() - started
    thread.join(timeout=30)
    assert not problems, problems
    sandbox.configure(latency_ms=0)
    return polled, took


def _assert_recovered(app, sandbox, batch_id: int, ids_before: set[str]) -> None:
    """The next tick records everything; no id was lost or added; the chain verifies."""
    left = sum(c.state == "accepted" for c in chunks_of(app, batch_id))
    assert polling.poll_due(app, now=utcnow() + timedelta(seconds=1)) == left
    assert {c.state for c in chunks_of(app, batch_id)} == {"complete"}
    assert subject_states(app, batch_id) == {"complete": OUTAGE_CHUNKS}
    assert batch_of(app, batch_id).state == "complete"
    assert {row.deletion_request_id for row in kept_ids(app)} == ids_before
    assert {row.status for row in kept_ids(app)} == {"complete"}
    assert polling.poll_due(app, now=utcnow() + timedelta(days=1)) == 0
    assert chain_ok(app)


@pytest.mark.postgres_only
def test_the_database_restarting_mid_poll_loses_nothing(app, sandbox, database_url, caplog):
    """Every desk connection is killed and refused for a second while answers come in."""
    env_id = make_environment(app, sandbox)
    batch_id = make_accepted_chunks(app, sandbox, env_id, chunks=OUTAGE_CHUNKS)
    ids_before = {row.deletion_request_id for row in kept_ids(app)}
    name = make_url(database_url).database
    admin_url = make_url(database_url).set(drivername="postgresql", database="postgres")

    def restart() -> None:
        with psycopg.connect(admin_url.render_as_string(hide_password=False)) as admin:
            admin.autocommit = True
            # What a restart does to the desk: its connections die, new ones are refused.
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            ).fetchone()[0]
            assert killed >= 1  # the desk's pooled connections
            time.sleep(1.0)
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')

    polled, _ = _poll_during(app, sandbox, restart)
    assert polled == OUTAGE_CHUNKS  # the run carried on and returned; it did not crash
    states = Counter(c.state for c in chunks_of(app, batch_id))
    assert states["accepted"] >= 1, states  # answers that came during the outage are not stored
    assert any("recording" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    _assert_recovered(app, sandbox, batch_id, ids_before)  # pool_pre_ping replaces dead ones


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's file lock; PostgreSQL has its own test")
def test_a_database_locked_by_another_writer_holds_the_poll_then_it_completes(
    app, sandbox, database_url
):
    """Another process holds SQLite's write lock for 1.5 s while answers come in."""
    env_id = make_environment(app, sandbox)
    batch_id = make_accepted_chunks(app, sandbox, env_id, chunks=OUTAGE_CHUNKS)
    ids_before = {row.deletion_request_id for row in kept_ids(app)}
    path = make_url(database_url).database
    held = 1.5

    def lock_the_file() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another writer: the desk's writes must wait
            time.sleep(held)
            other.execute("COMMIT")
        finally:
            other.close()

    polled, took = _poll_during(app, sandbox, lock_the_file)
    assert polled == OUTAGE_CHUNKS
    assert took >= held  # the run waited for the lock (busy_timeout) instead of failing
    assert {c.state for c in chunks_of(app, batch_id)} == {"complete"}  # and then recorded
    _assert_recovered(app, sandbox, batch_id, ids_before)


# --- the working scheduler killed ----------------------------------------------------------

LEASE_SECONDS = 5  # the smallest DESK_LEASE_SECONDS allows
POLL_SECONDS = 2


def _lease(app) -> SchedulerLease | None:
    with app.app_context(), session_scope(write=False) as session:
        return session.get(SchedulerLease, LEASE_NAME)


def _until(check, what: str, timeout: float, processes, logs: Path):
    """Poll `check` every 20 ms until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            tails = "\n".join(
                f"--- scheduler{n}:\n{(logs / f'scheduler{n}.log').read_text()[-2000:]}"
                for n in range(len(processes))
            )
            raise AssertionError(f"{what} within {timeout} s\n{tails}")
        time.sleep(0.02)


@pytest.mark.slow
def test_a_killed_scheduler_is_replaced_within_one_lease_and_one_interval(app, tmp_path):
    """Two real `desk scheduler` processes; SIGKILL the one working, time the takeover."""
    heap = start_sandbox(complete_after=None)  # real clock: its log times are seconds
    processes: list[subprocess.Popen] = []
    try:
        env_id = make_environment(app, heap)
        make_accepted_chunks(app, heap, env_id, chunks=3)
        env = {
            **os.environ,
            "DESK_LEASE_SECONDS": str(LEASE_SECONDS),
            "DESK_POLL_INTERVAL_SECONDS": str(POLL_SECONDS),
        }
        desk = str(Path(sys.executable).parent / "desk")
        for n in range(2):
            processes.append(
                subprocess.Popen(
                    [desk, "scheduler"],
                    env=env,
                    cwd=tmp_path,
                    stdout=(tmp_path / f"scheduler{n}.log").open("w"),
                    stderr=subprocess.STDOUT,
                )
            )
        _until(lambda: polls_by_request(heap), "no poll", 30, processes, tmp_path)
        first = _lease(app)
        victim = next(p for p in processes if f":{p.pid}:" in first.holder)
        time.sleep(POLL_SECONDS)  # let it work a little: it is killed mid-stride
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        assert victim.wait(timeout=10) == -signal.SIGKILL

        def taken_over() -> SchedulerLease | None:
            lease = _lease(app)
            return lease if lease.fencing_token > first.fencing_token else None

        second = _until(taken_over, "no takeover", 3 * LEASE_SECONDS, processes, tmp_path)
        takeover = time.monotonic() - killed_at
        _until(
            lambda: all(t[-1] > killed_at + takeover for t in polls_by_request(heap).values()),
            "polling did not resume",
            2 * POLL_SECONDS + 1,
            processes,
            tmp_path,
        )
        resumed = max(times[-1] for times in polls_by_request(heap).values()) - killed_at
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=20)
        heap.stop()
    survivor = next(p for p in processes if p is not victim)
    assert f":{survivor.pid}:" in second.holder
    assert second.fencing_token == first.fencing_token + 1
    # The lease runs out at most LEASE_SECONDS after the victim's last renewal; the survivor
    # tries again at its next tick (the heartbeat, every LEASE_SECONDS // 3 s).
    assert takeover <= LEASE_SECONDS + POLL_SECONDS, takeover
    assert resumed <= LEASE_SECONDS + 2 * POLL_SECONDS, resumed
    print(f"\ntakeover after SIGKILL: {takeover:.2f} s; polls resumed after {resumed:.2f} s")
