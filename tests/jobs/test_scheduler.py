"""The scheduler lease: one working scheduler, renewal, expiry, takeover, fencing of stale work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from workflow_factories import (
    batch_of,
    chunks_of,
    identifiers,
    kept_ids,
    make_accepted_chunks,
    make_batch,
    make_environment,
    polls_by_request,
)

from webapp.db import session_scope
from webapp.erasure import submission
from webapp.heap import HeapClient
from webapp.jobs.schedule import Job
from webapp.jobs.scheduler import DeskScheduler, tick_once
from webapp.lease import LEASE_NAME, acquire_lease, lease_is_current, release_lease
from webapp.models import SchedulerLease, utcnow
from webapp.sandbox import start_sandbox


def acquire(app, holder: str, ttl: int = 60) -> int | None:
    with app.app_context(), session_scope(write=True) as session:
        return acquire_lease(session, holder=holder, ttl_seconds=ttl)


def lease(app) -> SchedulerLease:
    with app.app_context(), session_scope(write=False) as session:
        return session.get(SchedulerLease, LEASE_NAME)


def expire_lease(app) -> None:
    """What a dead holder leaves behind once its last renewal runs out."""
    with app.app_context(), session_scope(write=True) as session:
        session.exec(sa.update(SchedulerLease).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()


def test_the_first_scheduler_takes_the_lease_and_renews_it(app):
    assert acquire(app, "a") == 1
    first_expiry = lease(app).expires_at
    assert acquire(app, "b") is None
    assert acquire(app, "a", ttl=120) == 1  # renewal keeps the token
    assert lease(app).expires_at > first_expiry
    assert lease(app).holder == "a"


def test_a_dead_holders_lease_is_taken_over_with_a_new_fencing_token(app):
    assert acquire(app, "a") == 1
    expire_lease(app)
    assert acquire(app, "b") == 2
    assert acquire(app, "a") is None  # the old holder cannot come back while b holds it
    with app.app_context(), session_scope(write=False) as session:
        assert not lease_is_current(session, 1)
        assert lease_is_current(session, 2)


def test_a_released_lease_is_taken_over_at_once(app):
    assert acquire(app, "a") == 1
    with app.app_context(), session_scope(write=True) as session:
        release_lease(session, holder="a")
    assert acquire(app, "b") == 2


def test_racing_schedulers_elect_exactly_one(app):
    start, won = threading.Barrier(6), []

    def contender(name: str) -> None:
        start.wait()
        won.append(acquire(app, name))

    threads = [threading.Thread(target=contender, args=(f"s{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(won, key=lambda token: token or 0) == [None] * 5 + [1]


def test_only_the_lease_holder_runs_a_job_and_it_gets_the_token(app):
    runs = []
    job = Job(id="probe", run=lambda _app, token: runs.append(token), seconds=lambda _app: 1)
    holder, other = DeskScheduler(app, holder="a"), DeskScheduler(app, holder="b")
    assert holder.tick(job) is True
    assert other.tick(job) is False
    assert holder.tick(job) is True
    assert runs == [1, 1]
    assert lease(app).last_tick_at is not None


def test_tick_once_runs_every_workflow_job(app, sandbox):
    env_id = make_environment(app, sandbox)
    batch_id = make_batch(app, env_id, identifiers(4))
    ran = tick_once(app, holder="one-shot")
    assert {"heartbeat", "submit_batches", "poll_heap"} <= set(ran)
    assert batch_of(app, batch_id).state in {"polling", "complete"}


def test_a_submission_run_stops_once_the_lease_moves_on(app, sandbox, monkeypatch):
    app.config["DESK_CHUNK_SIZE"] = 2
    env_id = make_environment(app, sandbox)
    batch_id = make_batch(app, env_id, identifiers(6))
    token = acquire(app, "a")
    real = HeapClient.delete_users

    def send_then_lose_the_lease(self, users):
        result = real(self, users)
        expire_lease(app)
        acquire(app, "b")  # another scheduler takes over while this POST was in flight
        return result

    monkeypatch.setattr(HeapClient, "delete_users", send_then_lose_the_lease)
    assert submission.submit_due(app, fencing_token=token) == 1
    # The answer already received is recorded (an id is never dropped); nothing more is sent.
    assert [chunk.state for chunk in chunks_of(app, batch_id)] == ["accepted", "queued", "queued"]
    assert len(kept_ids(app)) == 1
    monkeypatch.undo()
    assert submission.submit_due(app, fencing_token=token) == 0
    assert submission.submit_due(app, fencing_token=lease(app).fencing_token) == 2


@pytest.mark.postgres_only
def test_two_scheduler_processes_poll_each_request_once_per_interval(app, tmp_path):
    """Two real `desk scheduler` processes; the holder stops mid-way and the other takes over."""
    heap = start_sandbox(complete_after=None)  # real clock: the log's times are seconds
    try:
        env_id = make_environment(app, heap)
        make_accepted_chunks(app, heap, env_id, chunks=3)
        env = {**os.environ, "DESK_POLL_INTERVAL_SECONDS": "1"}
        desk = str(Path(sys.executable).parent / "desk")
        processes = [
            subprocess.Popen(
                [desk, "scheduler"],
                env=env,
                stdout=(tmp_path / f"scheduler{n}.log").open("w"),
                stderr=subprocess.STDOUT,
            )
            for n in range(2)
        ]
        try:
            _wait_for_polls(heap, processes, tmp_path, timeout=30)
            time.sleep(4)
            holder = lease(app).holder
            first = next(p for p in processes if f":{p.pid}:" in holder)
            first.send_signal(signal.SIGTERM)  # a clean stop hands the lease over at once
            assert first.wait(timeout=20) == 0
            time.sleep(4)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=20)
        polls = polls_by_request(heap)
    finally:
        heap.stop()
    second = lease(app)
    assert second.fencing_token == 2 and f":{first.pid}:" not in second.holder
    assert len(polls) == 3
    for times in polls.values():
        gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        assert len(times) >= 6, times  # polling went on through the takeover
        assert min(gaps) >= 0.75, gaps  # never twice within one interval (1 s)


def _wait_for_polls(heap, processes, logs: Path, *, timeout: float) -> None:
    """Wait until the first poll reaches the sandbox; fail early if a scheduler died."""
    deadline = time.monotonic() + timeout
    while not polls_by_request(heap):
        dead = [n for n, process in enumerate(processes) if process.poll() is not None]
        if dead or time.monotonic() > deadline:
            log = (logs / f"scheduler{dead[0] if dead else 0}.log").read_text()[-3000:]
            raise AssertionError(f"the schedulers never polled:\n{log}")
        time.sleep(0.1)
