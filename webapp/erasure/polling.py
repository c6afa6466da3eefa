"""Scheduled polling of Heap's deletion_status for every open request (a scheduler job).

The HTTP calls run in a bounded thread pool, outside any transaction; the answers are
recorded in short transactions, a few chunks at a time, in the job's thread while the next
calls are still in flight. Only a status *change* is audited; an unknown status is kept
verbatim and polling goes on; errors push that request's next poll back exponentially.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, select

from webapp import environments
from webapp.crypto import DecryptionError
from webapp.db import session_scope
from webapp.erasure.lifecycle import (
    COMPLETE,
    Completion,
    finish_batches,
    lock_batch,
    record_completed,
)
from webapp.erasure.poll_answers import (
    Answer,
    record_answers,
    record_quiet,
)
from webapp.erasure.settings import setting
from webapp.heap import HeapAuthError, HeapClient, HeapError, HeapRateLimited, HeapUnavailable
from webapp.lease import lease_is_current
from webapp.models import Batch, ChunkState, Environment, HeapDeletionId, HeapRequest, utcnow

log = logging.getLogger(__name__)

# Polls are safe to repeat, but a tick must not sleep through long retries: one quick retry
# here, then the request's own backoff (a later tick) takes over.
POLL_CLIENT_OPTIONS = {"max_attempts": 2, "backoff_base": 0.2, "backoff_max": 1.0}
# Answers are recorded every RECORD_EVERY_SECONDS, at most RECORD_GROUP chunks a transaction.
RECORD_EVERY_SECONDS = 0.25
RECORD_GROUP = 200
# Consecutive failed answers from one environment after which a run stops asking it.
BREAK_AFTER = 8


@dataclass(frozen=True)
class Target:
    """One chunk to poll: every deletion_request_id Heap gave for it, and what is known."""

    chunk_id: int
    batch_id: int
    environment_id: int
    ids: tuple[tuple[int, str], ...]  # (HeapDeletionId.id, deletion_request_id)
    known: tuple[str, ...]  # the stored status of each id
    poll_failures: int
    stale: bool
    accepted_at: datetime | None

    def completed(self, answers: list[Answer]) -> bool:
        """True when Heap says `complete` about every id of the chunk."""
        return all(answer.error is None and answer.status == COMPLETE for answer in answers)

    def quiet(self, answers: list[Answer], *, now: datetime, stale_after: timedelta) -> bool:
        """True when the answers change nothing but the poll times (the daily case)."""
        return (
            self.poll_failures == 0
            and all(
                answer.error is None and answer.status == known != COMPLETE
                for answer, known in zip(answers, self.known, strict=True)
            )
            and (self.stale or self.accepted_at is None or self.accepted_at > now - stale_after)
        )


# The poll job looks for due requests at least this often; each request is still asked about
# once per DESK_POLL_INTERVAL_SECONDS (its next_poll_at), but a newly accepted one is first
# looked at within a minute instead of up to a whole interval later.
POLL_TICK_MAX_SECONDS = 60


def poll_tick_seconds(app: Flask) -> int:
    """How often the poll job runs: the poll interval, or a minute if that is shorter."""
    return min(setting(app, "DESK_POLL_INTERVAL_SECONDS"), POLL_TICK_MAX_SECONDS)


def poll_slack(interval: int) -> timedelta:
    """How early a request counts as due.

    The job fires every interval, a few milliseconds late or early: without slack a request
    polled at 12:00:00.120 would not be due at 12:15:00.080 and would wait a whole interval.
    """
    return timedelta(seconds=min(interval * 0.1, 60.0))


def poll_due(app: Flask, fencing_token: int | None = None, *, now: datetime | None = None) -> int:
    """Poll every open Heap deletion request that is due; return how many chunks were polled."""
    now = now or utcnow()
    with app.app_context():
        with session_scope(write=False) as session:
            if fencing_token is not None and not lease_is_current(session, fencing_token):
                return 0
            targets = due_targets(session, now + poll_slack(poll_tick_seconds(app)))
            env_ids = sorted({target.environment_id for target in targets})
            rows = session.exec(select(Environment).where(Environment.id.in_(env_ids))).all()
            envs = {env.id: env for env in rows}
        if not targets:
            return 0
        clients, unusable = _clients(envs)
        try:
            polled = _poll(app, targets, clients, unusable, now=now)
        finally:
            for client in clients.values():
                client.close()
    log.info("polled %d Heap deletion request(s)", polled)
    return polled


def due_targets(session: Session, until: datetime) -> list[Target]:
    """Accepted chunks whose next poll is due by `until`, oldest due first."""
    rows = session.exec(
        select(
            HeapRequest.id,
            HeapRequest.batch_id,
            Batch.environment_id,
            HeapDeletionId.id,
            HeapDeletionId.deletion_request_id,
            HeapDeletionId.status,
            HeapRequest.poll_failures,
            HeapRequest.stale,
            HeapRequest.accepted_at,
        )
        .join(Batch, Batch.id == HeapRequest.batch_id)
        .join(HeapDeletionId, HeapDeletionId.heap_request_id == HeapRequest.id)
        .where(
            HeapRequest.state == ChunkState.ACCEPTED.value,
            sa.or_(HeapRequest.next_poll_at.is_(None), HeapRequest.next_poll_at <= until),
        )
        .order_by(HeapRequest.next_poll_at, HeapRequest.id, HeapDeletionId.id)
    ).all()
    targets: dict[int, Target] = {}
    for chunk_id, batch_id, env_id, row_id, request_id, status, failures, stale, accepted in rows:
        seen = targets.get(chunk_id)
        ids = ((row_id, request_id),) if seen is None else (*seen.ids, (row_id, request_id))
        known = (status,) if seen is None else (*seen.known, status)
        targets[chunk_id] = Target(
            chunk_id, batch_id, env_id, ids, known, failures, bool(stale), accepted
        )
    return list(targets.values())


def _clients(
    envs: dict[int, Environment],
) -> tuple[dict[int, HeapClient], dict[int, Exception]]:
    """A client per environment, its token fetched once up front.

    Threads then share the cached token; if the credentials fail, every request of that
    environment records the one error instead of a thousand refused token calls.
    """
    clients: dict[int, HeapClient] = {}
    unusable: dict[int, Exception] = {}
    for env_id, env in envs.items():
        try:
            client = environments.heap_client(env, **POLL_CLIENT_OPTIONS)
        except (HeapError, DecryptionError) as error:
            unusable[env_id] = error
            continue
        clients[env_id] = client
        try:
            client.fetch_token()
        except HeapError as error:
            unusable[env_id] = error
    return clients, unusable


class Breaker:
    """Stops asking an environment for the rest of a run once Heap keeps failing there.

    Without it an outage would cost every open request its full timeouts, 4 at a time: hours
    for a thousand requests. The requests not asked back off like the ones that failed.
    """

    def __init__(self, limit: int = BREAK_AFTER) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._failures: dict[int, int] = {}
        self._tripped: dict[int, Exception] = {}

    def tripped(self, environment_id: int) -> Exception | None:
        """The error that tripped the breaker for this environment, if it has."""
        with self._lock:
            return self._tripped.get(environment_id)

    def count(self, environment_id: int, error: Exception | None) -> None:
        """Count one answer: Heap unwell (5xx, unreachable, 429, refused token) or not."""
        with self._lock:
            if not isinstance(error, HeapUnavailable | HeapRateLimited | HeapAuthError):
                self._failures[environment_id] = 0
                return
            failures = self._failures.get(environment_id, 0) + 1
            self._failures[environment_id] = failures
            if failures >= self.limit:
                self._tripped.setdefault(environment_id, error)


def _ask(client: HeapClient, target: Target, breaker: Breaker) -> list[Answer]:
    """Ask Heap for the status of each id of one chunk (runs in a worker thread, no DB)."""
    answers = []
    for row_id, request_id in target.ids:
        error = breaker.tripped(target.environment_id)
        if error is None:
            try:
                status = client.deletion_status(request_id).status
            except HeapError as failure:
                error = failure
            except Exception as failure:  # noqa: BLE001 - one odd answer must not stop the run
                log.exception("polling a Heap deletion request failed unexpectedly")
                error = HeapUnavailable(f"unexpected {type(failure).__name__} while polling")
            breaker.count(target.environment_id, error)
        answers.append(Answer(row_id, request_id, None if error else status, error))
    return answers


def _poll(
    app: Flask,
    targets: Iterable[Target],
    clients: dict[int, HeapClient],
    unusable: dict[int, Exception],
    *,
    now: datetime,
) -> int:
    """Run the calls with bounded concurrency; record the answers in groups as they arrive."""
    polled = 0
    concurrency = max(1, setting(app, "DESK_POLL_CONCURRENCY"))
    breaker = Breaker()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="heap-poll") as pool:
        futures, failed = {}, []
        for target in targets:
            error = unusable.get(target.environment_id)
            if error is None:
                client = clients[target.environment_id]
                futures[pool.submit(_ask, client, target, breaker)] = target
            else:
                failed.append((target, [Answer(i, rid, None, error) for i, rid in target.ids]))
        polled += _record(app, failed, now)
        waiting = set(futures)
        while waiting:
            # Gathering a moment's answers into one transaction keeps this thread's share of
            # the GIL small, so the workers' calls are not held up waiting for it.
            done, waiting = wait(waiting, timeout=RECORD_EVERY_SECONDS)
            polled += _record(app, [(futures[f], f.result()) for f in done], now)
    return polled


def _record(app: Flask, answered: list[tuple[Target, list[Answer]]], now: datetime) -> int:
    """Record answers, RECORD_GROUP chunks a transaction; if a group fails, chunk by chunk."""
    for start in range(0, len(answered), RECORD_GROUP):
        group = answered[start : start + RECORD_GROUP]
        try:
            _record_group(app, group, now)
        except Exception:
            log.exception(
                "recording %d polls together failed; recording them one by one", len(group)
            )
            for item in group:
                try:
                    _record_group(app, [item], now)
                except Exception:
                    # That chunk stays due and is asked about again next run.
                    log.exception("recording the poll of Heap request %s failed", item[0].chunk_id)
    return len(answered)


def _record_group(app: Flask, group: list[tuple[Target, list[Answer]]], now: datetime) -> None:
    """One transaction: unchanged and completed chunks in bulk, the others one by one."""
    interval = setting(app, "DESK_POLL_INTERVAL_SECONDS")
    stale_after = timedelta(days=setting(app, "DESK_STALE_AFTER_DAYS"))
    quiet, completed, other = [], [], []
    for target, answers in group:
        if target.quiet(answers, now=now, stale_after=stale_after):
            quiet.append(target)
        elif target.completed(answers):
            rows = tuple(
                (i, rid, known) for (i, rid), known in zip(target.ids, target.known, strict=True)
            )
            completed.append(Completion(target.chunk_id, target.batch_id, rows))
        else:
            other.append((target, answers))
    with session_scope(write=True, app=app) as session:
        record_quiet(
            session,
            chunk_ids=[target.chunk_id for target in quiet],
            row_ids=[row_id for target in quiet for row_id, _ in target.ids],
            now=now,
            interval=interval,
        )
        # Lock order (deletion_requests): every batch first, by id, then chunks, then audit.
        touched = sorted({c.batch_id for c in completed} | {t.batch_id for t, _ in other})
        batches = {batch_id: lock_batch(session, batch_id) for batch_id in touched}
        record_completed(session, completed, now=now)
        finished = {c.batch_id for c in completed}
        for target, answers in other:
            if record_answers(
                session,
                chunk_id=target.chunk_id,
                answers=answers,
                now=now,
                interval=interval,
                stale_after=stale_after,
            ):
                finished.add(target.batch_id)
        finish_batches(session, [batches[b] for b in sorted(finished)], now=now)
        session.commit()
