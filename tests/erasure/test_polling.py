"""Polling Heap over the sandbox: status changes, completion, errors, staleness, concurrency."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from workflow_factories import (
    audit_entries,
    batch_of,
    chain_ok,
    chunks_of,
    kept_ids,
    make_accepted_chunks,
    make_environment,
    subject_states,
)

from webapp.db import session_scope
from webapp.erasure import polling
from webapp.heap import HeapClient
from webapp.lease import acquire_lease
from webapp.models import HeapDeletionId, utcnow

INTERVAL = 900


@pytest.fixture
def env_id(app, sandbox):
    """Main Production on a sandbox where requests stay pending until a test completes them."""
    sandbox.configure(complete_after=None)
    return make_environment(app, sandbox)


def status_calls(sandbox) -> int:
    with sandbox.state.lock:
        return sum("/deletion_status/" in entry["path"] for entry in sandbox.state.requests)


def set_heap_status(sandbox, deletion_request_id: str, status: str) -> None:
    with sandbox.state.lock:
        sandbox.state.deletions[deletion_request_id].status = status


def test_identical_polls_are_not_audited_and_completion_flows_to_the_batch(app, sandbox, env_id):
    batch_id = make_accepted_chunks(app, sandbox, env_id, chunks=2, per_chunk=2)
    first_id, second_id = (chunk.deletion_request_id for chunk in chunks_of(app, batch_id))
    now = utcnow()
    assert polling.poll_due(app, now=now) == 2
    assert polling.poll_due(app, now=now + timedelta(seconds=INTERVAL / 2)) == 0  # not due
    assert polling.poll_due(app, now=now + timedelta(seconds=INTERVAL)) == 2
    assert status_calls(sandbox) == 4
    assert audit_entries(app, "heap_request.status_changed") == []
    chunk = chunks_of(app, batch_id)[0]
    assert chunk.next_poll_at == now + timedelta(seconds=2 * INTERVAL)

    sandbox.state.complete([first_id])
    assert polling.poll_due(app, now=now + timedelta(seconds=2 * INTERVAL)) == 2
    assert [c.state for c in chunks_of(app, batch_id)] == ["complete", "accepted"]
    assert subject_states(app, batch_id) == {"complete": 2, "submitted": 2}
    assert (batch_of(app, batch_id).state, batch_of(app, batch_id).completed_count) == (
        "polling",
        2,
    )
    (change,) = audit_entries(app, "heap_request.status_changed")
    assert change["details"] == {
        "batch_id": batch_id,
        "deletion_request_id": first_id,
        "from": "pending",
        "to": "complete",
    }

    sandbox.state.complete([second_id])
    assert polling.poll_due(app, now=now + timedelta(seconds=3 * INTERVAL)) == 1
    batch = batch_of(app, batch_id)
    assert (batch.state, batch.completed_count) == ("complete", 4)
    assert batch.completed_at == now + timedelta(seconds=3 * INTERVAL)
    (done,) = audit_entries(app, "batch.completed")
    assert done["details"]["completed_subjects"] == 4
    assert {row.status for row in kept_ids(app)} == {"complete"}
    assert polling.poll_due(app, now=now + timedelta(days=7)) == 0  # nothing open any more
    assert chain_ok(app)


def test_an_unknown_status_is_kept_verbatim_and_polling_goes_on(app, sandbox, env_id):
    batch_id = make_accepted_chunks(app, sandbox, env_id, chunks=1)
    (chunk,) = chunks_of(app, batch_id)
    set_heap_status(sandbox, chunk.deletion_request_id, "Processing (GDPR queue)")
    now = utcnow()
    polling.poll_due(app, now=now)
    polling.poll_due(app, now=now + timedelta(seconds=INTERVAL))
    (chunk,) = chunks_of(app, batch_id)
    assert (chunk.state, chunk.heap_status) == ("accepted", "Processing (GDPR queue)")
    assert kept_ids(app)[0].status == "Processing (GDPR queue)"
    assert chunk.next_poll_at == now + timedelta(seconds=2 * INTERVAL)
    (change,) = audit_entries(app, "heap_request.status_changed")
    assert change["details"]["to"] == "Processing (GDPR queue)"

    sandbox.state.complete([chunk.deletion_request_id])
    polling.poll_due(app, now=now + timedelta(seconds=2 * INTERVAL))
    assert batch_of(app, batch_id).state == "complete"
    assert [e["details"]["to"] for e in audit_entries(app, "heap_request.status_changed")] == [
        "Processing (GDPR queue)",
        "complete",
    ]


def test_a_404_backs_off_and_is_audited_once(app, sandbox, env_id):
    batch_id = make_accepted_chunks(app, sandbox, env_id, chunks=1)
    (chunk,) = chunks_of(app, batch_id)
    with sandbox.state.lock:
        del sandbox.state.deletions[chunk.deletion_request_id]
    now = utcnow()
    polling.poll_due(app, now=now)
    (chunk,) = chunks_of(app, batch_id)
    assert (chunk.state, chunk.poll_failures) == ("accepted", 1)
    assert chunk.next_poll_at == now + timedelta(seconds=2 * INTERVAL)
    assert chunk.last_error.startswith(
        f"Heap does not know deletion request {chunk.deletion_request_id} (404)"
    )

    later = now + timedelta(seconds=2 * INTERVAL)
    assert polling.poll_due(app, now=later - timedelta(seconds=INTERVAL)) == 0  # backing off
    assert polling.poll_due(app, now=later) == 1
    (chunk,) = chunks_of(app, batch_id)
    assert chunk.poll_failures == 2
    assert chunk.next_poll_at == later + timedelta(seconds=4 * INTERVAL)
    assert len(audit_entries(app, "heap_request.poll_not_found")) == 1
    assert chain_ok(app)


def test_failing_polls_back_off_and_a_good_answer_resets(app, sandbox, env_id):
    batch_id = make_accepted_chunks(app, sandbox, env_id, chunks=1)
    sandbox.add_faults({"kind": "503", "path": "/deletion_status/", "times": 2})
    now = utcnow()
    polling.poll_due(app, now=now)
    (chunk,) = chunks_of(app, batch_id)
    assert chunk.poll_failures == 1
    assert chunk.last_error.startswith("Asking Heap for the status failed")
    assert chunk.next_poll_at == now + timedelta(seconds=2 * INTERVAL)
    later = now + timedelta(seconds=2 * INTERVAL)
    polling.poll_due(app, now=later)
    (chunk,) = chunks_of(app, batch_id)
    assert (chunk.poll_failures, chunk.last_error) == (0, None)
    assert chunk.next_poll_at == later + timedelta(seconds=INTERVAL)
    assert audit_entries(app, "heap_request.status_changed") == []  # errors are not statuses


def test_a_request_pending_too_long_is_flagged_stale_once(app, sandbox, env_id):
    batch_id = make_accepted_chunks(app, sandbox, env_id, chunks=1)
    now = utcnow()
    polling.poll_due(app, now=now + timedelta(days=29))
    assert chunks_of(app, batch_id)[0].stale is False
    polling.poll_due(app, now=now + timedelta(days=31))
    polling.poll_due(app, now=now + timedelta(days=32))
    assert chunks_of(app, batch_id)[0].stale is True
    (flag,) = audit_entries(app, "heap_request.stale")
    assert flag["details"]["days_open"] == 31

    app.config["DESK_STALE_AFTER_DAYS"] = 3
    other = make_accepted_chunks(app, sandbox, env_id, chunks=1, start=10)
    polling.poll_due(app, now=now + timedelta(days=4))
    assert chunks_of(app, other)[0].stale is True


@pytest.mark.parametrize("concurrency", [4, 2])
def test_polls_run_with_bounded_concurrency(app, sandbox, env_id, monkeypatch, concurrency):
    app.config["DESK_POLL_CONCURRENCY"] = concurrency
    sandbox.configure(latency_ms=30)
    make_accepted_chunks(app, sandbox, env_id, chunks=12)
    lock, in_flight, peak = threading.Lock(), [0], [0]
    real = HeapClient.deletion_status

    def counted(self, deletion_request_id):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            return real(self, deletion_request_id)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(HeapClient, "deletion_status", counted)
    started = time.monotonic()
    assert polling.poll_due(app) == 12
    assert 2 <= peak[0] <= concurrency
    # 12 calls of ≥ 30 ms, `concurrency` at a time, take at least 12 / concurrency rounds.
    assert time.monotonic() - started >= 0.03 * 12 / concurrency


def test_refused_credentials_cost_one_token_call_not_one_per_request(app, sandbox):
    sandbox.configure(complete_after=None)
    env_id = make_environment(app, sandbox, api_key="a-key-heap-never-issued")
    batch_id = make_accepted_chunks(app, sandbox, env_id, chunks=5)
    assert polling.poll_due(app) == 5
    with sandbox.state.lock:
        paths = [entry["path"] for entry in sandbox.state.requests]
    assert paths == ["/api/public/v0/auth_token"]
    chunks = chunks_of(app, batch_id)
    assert {chunk.poll_failures for chunk in chunks} == {1}
    assert all("refused" in chunk.last_error for chunk in chunks)


def test_a_scheduler_that_lost_the_lease_polls_nothing(app, sandbox, env_id):
    make_accepted_chunks(app, sandbox, env_id, chunks=2)
    with app.app_context(), session_scope(write=True) as session:
        token = acquire_lease(session, holder="another-process", ttl_seconds=60)
    assert polling.poll_due(app, fencing_token=token - 1) == 0
    assert status_calls(sandbox) == 0
    assert polling.poll_due(app, fencing_token=token) == 2


def test_a_chunk_that_cannot_be_recorded_spares_the_others(app, sandbox, env_id, monkeypatch):
    batch_id = make_accepted_chunks(app, sandbox, env_id, chunks=3)
    broken = chunks_of(app, batch_id)[1].id
    sandbox.state.complete()
    real = polling.record_completed

    def fail_for_one(session, completions, **kwargs):
        if any(completion.chunk_id == broken for completion in completions):
            raise RuntimeError("disk full")
        return real(session, completions, **kwargs)

    monkeypatch.setattr(polling, "record_completed", fail_for_one)
    now = utcnow()
    assert polling.poll_due(app, now=now) == 3
    assert [c.state for c in chunks_of(app, batch_id)] == ["complete", "accepted", "complete"]
    monkeypatch.undo()
    assert polling.poll_due(app, now=now) == 1  # still due: asked about again
    assert batch_of(app, batch_id).state == "complete"
    assert chain_ok(app)


def test_a_chunk_with_two_ids_polls_both_and_completes_when_one_does(app, sandbox, env_id):
    batch_id = make_accepted_chunks(app, sandbox, env_id, chunks=1, per_chunk=2)
    (chunk,) = chunks_of(app, batch_id)
    first = chunk.deletion_request_id
    users = sandbox.state.deletions[first].users
    second = sandbox.state.create_deletion(sandbox.app_id, users).deletion_request_id
    with app.app_context(), session_scope(write=True) as session:
        session.add(
            HeapDeletionId(
                heap_request_id=chunk.id,
                deletion_request_id=second,
                attempt=2,
                status="pending",
                accepted_at=utcnow(),
            )
        )
        session.commit()
    now = utcnow()
    polling.poll_due(app, now=now)
    assert status_calls(sandbox) == 2  # every id Heap gave is asked about
    sandbox.state.complete([second])
    polling.poll_due(app, now=now + timedelta(seconds=INTERVAL))
    (chunk,) = chunks_of(app, batch_id)
    assert (chunk.state, chunk.heap_status) == ("complete", "complete")
    assert {row.deletion_request_id: row.status for row in kept_ids(app)} == {
        first: "pending",
        second: "complete",
    }
    assert subject_states(app, batch_id) == {"complete": 2}
    assert batch_of(app, batch_id).state == "complete"
    (change,) = audit_entries(app, "heap_request.status_changed")
    assert change["details"]["deletion_request_id"] == second
    assert chain_ok(app)


def test_an_outage_stops_the_run_early_and_every_request_backs_off(app, sandbox, env_id):
    batch_id = make_accepted_chunks(app, sandbox, env_id, chunks=20)
    sandbox.add_faults({"kind": "503", "path": "/deletion_status/", "times": 1000})
    now = utcnow()
    assert polling.poll_due(app, now=now) == 20
    # Each failing request is tried twice by the client; the breaker opens after 8 failures,
    # with at most 4 more already in flight: far fewer calls than 20 requests × 2.
    assert status_calls(sandbox) <= 2 * (polling.BREAK_AFTER + 4)
    chunks = chunks_of(app, batch_id)
    assert {chunk.poll_failures for chunk in chunks} == {1}
    assert {chunk.next_poll_at for chunk in chunks} == {now + timedelta(seconds=2 * INTERVAL)}


def test_the_poll_job_ticks_each_minute_but_asks_each_request_once_an_interval(
    app, sandbox, env_id
):
    """A fresh request is first looked at within a minute, then once per poll interval."""
    app.config["DESK_POLL_INTERVAL_SECONDS"] = INTERVAL
    assert polling.poll_tick_seconds(app) == 60
    batch_id = make_accepted_chunks(app, sandbox, env_id, chunks=1, per_chunk=2)
    now = utcnow()
    assert polling.poll_due(app, now=now) == 1  # the first tick after Heap accepted it
    for minute in range(1, 15):  # the following ticks of the next quarter hour
        assert polling.poll_due(app, now=now + timedelta(minutes=minute)) == 0
    assert polling.poll_due(app, now=now + timedelta(seconds=INTERVAL)) == 1
    assert status_calls(sandbox) == 2
    assert batch_of(app, batch_id).state == "polling"
    app.config["DESK_POLL_INTERVAL_SECONDS"] = 30
    assert polling.poll_tick_seconds(app) == 30
