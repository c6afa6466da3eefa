"""Submission to Heap over the sandbox: chunking, intent before POST, every failure mode."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from workflow_factories import (
    as_heap_user,
    audit_entries,
    batch_of,
    chain_ok,
    chunks_of,
    deletion_posts,
    identifiers,
    kept_ids,
    make_batch,
    make_environment,
    sandbox_deletions,
    sandbox_subjects_left,
    seed_sandbox,
    subject_states,
)

from webapp.db import session_scope
from webapp.erasure import polling, submission
from webapp.erasure.lifecycle import start_batch
from webapp.erasure.retry_policy import format_retry_time
from webapp.heap import HeapClient
from webapp.models import HeapRequest, utcnow
from webapp.trail import audit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env_id(app, sandbox):
    """Main Production on the sandbox; requests of 3 subjects."""
    app.config["DESK_CHUNK_SIZE"] = 3
    return make_environment(app, sandbox)


def users_of(entry: dict) -> list[dict]:
    return entry["users"] if "users" in entry else entry["body"]["users"]


def requests_holding(sandbox, users: list[dict]) -> list[dict]:
    """The sandbox's deletion requests whose users are exactly `users`."""
    return [record for record in sandbox_deletions(sandbox) if record["users"] == users]


def complete_everything(app, sandbox) -> None:
    """Heap finishes every request; one polling run records it."""
    sandbox.state.complete()
    polling.poll_due(app, now=utcnow() + timedelta(days=1))


def test_25000_subjects_in_three_batches_go_from_approved_to_complete(app, sandbox):
    app.config["DESK_CHUNK_SIZE"] = 1000
    sandbox.configure(complete_after=None)  # Heap takes days: complete only when told
    env_id = make_environment(app, sandbox)
    sizes = (10_000, 10_000, 5_000)
    everyone = identifiers(sum(sizes))
    seed_sandbox(sandbox, everyone)
    batches, start = [], 0
    for size in sizes:
        batches.append(make_batch(app, env_id, everyone[start : start + size]))
        start += size

    assert submission.submit_due(app) == 25
    for batch_id, size in zip(batches, sizes, strict=True):
        assert batch_of(app, batch_id).state == "polling"
        assert [chunk.subject_count for chunk in chunks_of(app, batch_id)] == [1000] * (
            size // 1000
        )
        assert subject_states(app, batch_id) == {"submitted": size}
    heap = sandbox_deletions(sandbox)
    sent = [json.dumps(user, sort_keys=True) for record in heap for user in record["users"]]
    assert sorted(sent) == sorted(json.dumps(as_heap_user(s), sort_keys=True) for s in everyone)
    assert sandbox_subjects_left(sandbox) == 25_000  # accepted is not deleted yet

    assert polling.poll_due(app) == 25  # all still pending: nothing changes
    assert audit_entries(app, "heap_request.status_changed") == []

    complete_everything(app, sandbox)
    for batch_id, size in zip(batches, sizes, strict=True):
        batch = batch_of(app, batch_id)
        assert (batch.state, batch.completed_count) == ("complete", size)
        assert subject_states(app, batch_id) == {"complete": size}
    assert sandbox_subjects_left(sandbox) == 0
    assert {row.deletion_request_id for row in kept_ids(app)} == {
        r["deletion_request_id"] for r in heap
    }
    assert len(audit_entries(app, "batch.completed")) == 3
    assert chain_ok(app)


def test_intent_is_committed_before_the_post(app, sandbox, env_id, monkeypatch):
    batch_id = make_batch(app, env_id, identifiers(3))
    seen = []
    real = HeapClient.delete_users

    def inspect_then_send(self, users):
        with app.app_context(), session_scope(write=False) as session:
            chunk = session.get(HeapRequest, chunks_of(app, batch_id)[0].id)
            last = audit.head(session)
            seen.append((chunk.state, chunk.attempts, last.action, json.loads(last.details)))
        return real(self, users)

    monkeypatch.setattr(HeapClient, "delete_users", inspect_then_send)
    submission.submit_due(app)
    ((state, attempts, action, details),) = seen
    assert (state, attempts, action) == ("sending", 1, "heap_request.sending")
    assert details["payload_sha256"] == chunks_of(app, batch_id)[0].payload_sha256
    assert details["subject_count"] == 3


def test_the_body_sent_is_the_planned_one_with_user_ids_as_numbers(app, sandbox, env_id):
    subjects = identifiers(5)
    batch_id = make_batch(app, env_id, subjects)
    submission.submit_due(app)
    posts = deletion_posts(sandbox)
    assert [users_of(post) for post in posts] == [
        [as_heap_user(s) for s in subjects[:3]],
        [as_heap_user(s) for s in subjects[3:]],
    ]
    assert isinstance(users_of(posts[0])[0]["user_id"], int)
    for post, chunk in zip(posts, chunks_of(app, batch_id), strict=True):
        body = audit.canonical_json(post["body"]).encode()
        assert hashlib.sha256(body).hexdigest() == chunk.payload_sha256
    assert [a for a in (e["action"] for e in audit_entries(app)) if a.startswith("heap_")] == [
        "heap_request.planned",
        "heap_request.planned",
        "heap_request.sending",
        "heap_request.accepted",
        "heap_request.sending",
        "heap_request.accepted",
    ]


def test_a_token_expiring_mid_submission_is_renewed_once(
    app, sandbox, sandbox_clock, env_id, monkeypatch
):
    batch_id = make_batch(app, env_id, identifiers(9))
    real = HeapClient.delete_users

    def send_then_let_time_pass(self, users):
        result = real(self, users)
        sandbox_clock.advance(200)  # Heap's clock runs on; the token dies after 300 s
        return result

    monkeypatch.setattr(HeapClient, "delete_users", send_then_let_time_pass)
    assert submission.submit_due(app) == 3
    assert [post["status"] for post in deletion_posts(sandbox)] == [201, 201, 401, 201]
    assert sandbox.state.tokens_issued == 2
    assert batch_of(app, batch_id).state == "polling"
    assert chain_ok(app)


def test_a_refused_api_key_makes_the_batch_wait_with_the_reason(app, sandbox):
    app.config["DESK_CHUNK_SIZE"] = 3
    env_id = make_environment(app, sandbox, api_key="not-the-key-heap-knows")
    batch_id = make_batch(app, env_id, identifiers(3))
    assert submission.submit_due(app) == 0
    batch = batch_of(app, batch_id)
    assert batch.state == "waiting_retry"
    assert batch.last_error.startswith("Heap refused the API key of this environment")
    assert "not-the-key" not in json.dumps(audit_entries(app))
    assert deletion_posts(sandbox) == []
    assert chain_ok(app)


@pytest.mark.parametrize("retry_after", [120, None])
def test_429_waits_as_heap_asks_then_sends(app, sandbox, env_id, retry_after):
    batch_id = make_batch(app, env_id, identifiers(9))
    sandbox.add_faults({"kind": "429", "path": "/user_deletion", "retry_after": retry_after})
    now = utcnow()
    assert submission.submit_due(app, now=now) == 0
    first, *others = chunks_of(app, batch_id)
    wait = (first.next_attempt_at - now).total_seconds()
    if retry_after:
        assert wait == pytest.approx(120)
    else:
        assert 15 <= wait <= 30  # backoff with jitter: half to all of 30 s
    assert [chunk.state for chunk in others] == ["queued", "queued"]  # nothing more sent
    batch = batch_of(app, batch_id)
    assert batch.state == "waiting_retry"
    when = format_retry_time(first.next_attempt_at, now)
    assert batch.last_error == f"Heap asked us to slow down (429); retrying at {when}"

    assert submission.submit_due(app, now=now + timedelta(seconds=wait - 5)) == 0
    assert len(deletion_posts(sandbox)) == 1
    assert submission.submit_due(app, now=now + timedelta(seconds=wait + 1)) == 3
    assert batch_of(app, batch_id).state == "polling"
    assert batch_of(app, batch_id).last_error is None
    assert chunks_of(app, batch_id)[0].attempts == 2
    assert chain_ok(app)


def test_a_429_holds_back_the_other_batches_of_the_environment(app, sandbox, env_id):
    first = make_batch(app, env_id, identifiers(3))
    second = make_batch(app, env_id, identifiers(3, start=3))
    sandbox.add_faults({"kind": "429", "path": "/user_deletion", "retry_after": 60})
    now = utcnow()
    submission.submit_due(app, now=now)
    assert len(deletion_posts(sandbox)) == 1
    assert batch_of(app, second).next_attempt_at == now + timedelta(seconds=60)
    assert submission.submit_due(app, now=now + timedelta(seconds=61)) == 2
    assert {batch_of(app, b).state for b in (first, second)} == {"polling"}


def test_a_burst_of_503s_is_retried_with_growing_backoff(app, sandbox, env_id):
    batch_id = make_batch(app, env_id, identifiers(6))
    sandbox.add_faults({"kind": "503", "path": "/user_deletion", "times": 3})
    now, waits = utcnow(), []
    for _ in range(3):
        assert submission.submit_due(app, now=now) == 0
        chunk = chunks_of(app, batch_id)[0]
        assert batch_of(app, batch_id).last_error.startswith("Heap is unavailable (HTTP 503)")
        waits.append((chunk.next_attempt_at - now).total_seconds())
        now = chunk.next_attempt_at + timedelta(seconds=1)
    assert 15 <= waits[0] <= 30 and 30 <= waits[1] <= 60 and 60 <= waits[2] <= 120
    assert submission.submit_due(app, now=now) == 2
    assert [c.attempts for c in chunks_of(app, batch_id)] == [4, 1]
    assert len(audit_entries(app, "heap_request.retry_scheduled")) == 3
    assert chain_ok(app)


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "drop_after", "path": "/user_deletion"},
        {"kind": "slow_after", "path": "/user_deletion", "seconds": 1.0},
    ],
    ids=["connection-dropped", "answer-too-late"],
)
def test_an_answer_that_never_comes_is_resubmitted_and_every_request_kept(
    app, sandbox, env_id, fault
):
    app.config["DESK_HEAP_TIMEOUT"] = (1.0, 0.5)
    subjects = identifiers(6)
    seed_sandbox(sandbox, subjects)
    batch_id = make_batch(app, env_id, subjects)
    sandbox.add_faults(fault)
    now = utcnow()
    assert submission.submit_due(app, now=now) == 0
    first, second = chunks_of(app, batch_id)
    assert (first.state, first.attempts, second.state) == ("queued", 1, "queued")
    assert first.last_error.startswith("Heap's answer never came")
    assert len(audit_entries(app, "heap_request.outcome_unknown")) == 1
    lost = requests_holding(sandbox, [as_heap_user(s) for s in subjects[:3]])
    assert len(lost) == 1  # Heap acted on it; its answer was lost on the way

    assert submission.submit_due(app, now=first.next_attempt_at + timedelta(seconds=1)) == 2
    both = requests_holding(sandbox, [as_heap_user(s) for s in subjects[:3]])
    assert len(both) == 2  # the resubmission is a second request for the same users
    kept = {row.deletion_request_id for row in kept_ids(app)}
    assert kept <= {record["deletion_request_id"] for record in sandbox_deletions(sandbox)}
    assert chunks_of(app, batch_id)[0].deletion_request_id in kept - {
        lost[0]["deletion_request_id"]
    }

    complete_everything(app, sandbox)
    assert subject_states(app, batch_id) == {"complete": 6}
    assert sandbox_subjects_left(sandbox) == 0
    assert chain_ok(app)


CRASH_AFTER_POST = """
import json, os, signal, sys
from webapp import create_app
from webapp.erasure import submission
from webapp.heap import HeapClient

real = HeapClient.delete_users

def delete_then_die(self, users):
    real(self, users)  # Heap now holds the request...
    os.kill(os.getpid(), signal.SIGKILL)  # ...and the desk dies before recording its id

HeapClient.delete_users = delete_then_die
submission.submit_due(create_app(json.loads(sys.argv[1])))
"""


def test_a_sigkill_between_post_and_record_loses_nothing(app, sandbox, env_id, tmp_path):
    subjects = identifiers(9)
    seed_sandbox(sandbox, subjects)
    batch_id = make_batch(app, env_id, subjects)
    config = {"INSTANCE_PATH": str(tmp_path / "crashed"), "DESK_CHUNK_SIZE": 3}
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_POST, json.dumps(config)],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        timeout=120,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()[-2000:]
    first_users = [as_heap_user(s) for s in subjects[:3]]
    assert [c.state for c in chunks_of(app, batch_id)] == ["sending", "queued", "queued"]
    assert len(requests_holding(sandbox, first_users)) == 1
    assert kept_ids(app) == []

    # Right after a restart the chunk may still be in flight elsewhere: it is left alone...
    assert submission.submit_due(app) == 2
    assert chunks_of(app, batch_id)[0].state == "sending"
    # ...until no POST could still be running: then it counts as unknown and is sent again.
    later = utcnow() + submission.sending_grace(app) + timedelta(seconds=1)
    assert submission.submit_due(app, now=later) == 1
    assert [c.state for c in chunks_of(app, batch_id)] == ["accepted"] * 3
    assert len(requests_holding(sandbox, first_users)) == 2
    (unknown,) = audit_entries(app, "heap_request.outcome_unknown")
    assert unknown["details"]["reason"] == "the desk stopped after the request may have been sent"

    complete_everything(app, sandbox)
    assert subject_states(app, batch_id) == {"complete": 9}
    assert batch_of(app, batch_id).state == "complete"
    assert sandbox_subjects_left(sandbox) == 0
    assert chain_ok(app)


def test_a_400_fails_the_request_without_leaking_identifiers_then_retry_sends_it(
    app, sandbox, env_id, sandbox_as_heap
):
    batch_id = make_batch(app, env_id, identifiers(9))
    sandbox.add_faults(
        {
            "kind": "400",
            "path": "/user_deletion",
            "shape": "error",
            "message": "identity person1@example.org is not valid",
        }
    )
    # The refused request does not hold the others back: their deadlines are running too.
    assert submission.submit_due(app) == 2
    first, *others = chunks_of(app, batch_id)
    assert first.state == "failed"
    assert first.last_error == "Heap delete_users was rejected: identity [identity] is not valid"
    assert [chunk.state for chunk in others] == ["accepted", "accepted"]
    batch = batch_of(app, batch_id)
    assert batch.state == "failed"
    assert batch.last_error.startswith("Heap refused request 1 of 3 for good")
    assert batch.last_error.endswith("Correct the cause, then retry the batch.")
    assert subject_states(app, batch_id) == {"failed": 3, "submitted": 6}
    assert "person1@example.org" not in json.dumps(audit_entries(app))
    assert submission.submit_due(app) == 0  # a failed batch waits for a person
    assert len(deletion_posts(sandbox)) == 3

    with app.app_context(), session_scope(write=True) as session:
        submission.retry_failed(session, actor="officer@example.org", batch_id=batch_id)
    assert batch_of(app, batch_id).state == "approved"
    (retry,) = audit_entries(app, "batch.retry_requested")
    assert (retry["actor"], retry["details"]["chunks_requeued"]) == ("officer@example.org", 1)
    assert submission.submit_due(app) == 1
    assert batch_of(app, batch_id).state == "polling"
    assert subject_states(app, batch_id) == {"submitted": 9}
    assert chain_ok(app)


def test_only_a_failed_or_waiting_batch_can_be_retried(app, sandbox, env_id):
    batch_id = make_batch(app, env_id, identifiers(3))
    submission.submit_due(app)
    with app.app_context(), session_scope(write=True) as session:
        with pytest.raises(submission.SubmissionError, match="only a failed batch"):
            submission.retry_failed(session, actor="officer@example.org", batch_id=batch_id)
        with pytest.raises(submission.SubmissionError, match="There is no batch 999"):
            submission.retry_failed(session, actor="officer@example.org", batch_id=999)


def test_two_submitters_at_once_send_each_request_once(app, sandbox, env_id):
    sandbox.configure(latency_ms=20)
    batch_id = make_batch(app, env_id, identifiers(18))
    start = threading.Barrier(2)
    results = []

    def submitter():
        start.wait()
        results.append(submission.submit_due(app))

    threads = [threading.Thread(target=submitter) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(results) == 6
    assert len(sandbox_deletions(sandbox)) == 6
    assert [chunk.attempts for chunk in chunks_of(app, batch_id)] == [1] * 6
    assert chain_ok(app)


def test_a_cancelled_or_unapproved_batch_is_never_sent(app, sandbox, env_id):
    from webapp.models import BatchState

    waiting = make_batch(app, env_id, identifiers(3), state=BatchState.AWAITING_APPROVAL)
    cancelled = make_batch(app, env_id, identifiers(3, start=3), state=BatchState.CANCELLED)
    assert submission.submit_due(app) == 0
    assert deletion_posts(sandbox) == []
    assert chunks_of(app, waiting) == chunks_of(app, cancelled) == []


def test_no_identifier_reaches_the_desks_logs(app, sandbox, env_id, caplog):
    subjects = identifiers(6)
    make_batch(app, env_id, subjects)
    sandbox.add_faults({"kind": "503", "path": "/user_deletion"})
    caplog.set_level("DEBUG", logger="webapp")
    later = utcnow() + timedelta(minutes=5)
    submission.submit_due(app)
    submission.submit_due(app, now=later)
    complete_everything(app, sandbox)
    desk_logs = [r.getMessage() for r in caplog.records if not r.name.startswith("webapp.sandbox")]
    assert desk_logs  # the desk did log its work...
    for _, value in subjects:
        assert not any(value in message for message in desk_logs)  # ...never a subject


def test_an_unreadable_request_waits_and_other_batches_still_go_out(app, sandbox, env_id):
    from webapp.models import Subject

    broken = make_batch(app, env_id, identifiers(2))
    fine = make_batch(app, env_id, identifiers(3, start=100))
    with app.app_context(), session_scope(write=True) as session:
        # Planned (as when a key goes missing between planning and sending), then unreadable.
        assert start_batch(session, broken, now=utcnow(), size=10)
        for subject in session.exec(select(Subject).where(Subject.batch_id == broken)).all():
            subject.identifier_encrypted = "gAAAAA-not-a-fernet-token"
        session.commit()
    submission.submit_due(app)  # no exception escapes the tick
    assert batch_of(app, broken).state == "waiting_retry"
    assert "cannot be read" in batch_of(app, broken).last_error
    submission.submit_due(app, now=utcnow() + timedelta(hours=2))
    assert subject_states(app, fine) == {"submitted": 3}
    assert chain_ok(app)
