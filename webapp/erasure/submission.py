"""Crash-safe submission of approved batches to Heap's user_deletion API (a scheduler job).

Each POST sits between two commits (DESIGN.md, "No deletion is lost"): the intent (chunk
`sending`, attempt, payload hash, audit entry) is committed, then Heap is called outside any
transaction, then its deletion_request_id is committed with its audit entry. A chunk found
`sending` later was interrupted in between: its outcome is unknown, so it is sent again —
deleting twice is harmless, forgetting a deletion is not — and every id Heap returns is kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from sqlmodel import Session, select

from webapp import environments
from webapp.crypto import DecryptionError
from webapp.db import session_scope
from webapp.erasure.lifecycle import (
    SUBMITTABLE,
    claim_for_sending,
    due_condition,
    hold_environment,
    lock_batch,
    record_accepted,
    record_failed,
    record_retry,
    record_unknown,
    recover_interrupted,
    requeue_for_retry,
    start_batch,
)
from webapp.erasure.payloads import chunk_users, payload_sha256
from webapp.erasure.retry_policy import backoff, is_permanent, retry_at_for
from webapp.erasure.settings import chunk_size
from webapp.heap import (
    DeletionAccepted,
    HeapClient,
    HeapError,
    HeapOutcomeUnknown,
    HeapValidationError,
)
from webapp.lease import lease_is_current
from webapp.models import Batch, BatchState, ChunkState, Environment, HeapRequest, utcnow

log = logging.getLogger(__name__)
# Added to the client's timeouts before a `sending` chunk counts as interrupted.
SENDING_MARGIN_SECONDS = 30.0


class UnreadableRequest(HeapError):
    """The desk cannot read a planned request's subjects (a key gone missing): it waits alone."""


class SubmissionError(ValueError):
    """A submission request that cannot be carried out; the message is for the officer."""

    status, code = 409, "conflict"


@dataclass
class _Tick:
    """One run of the job: its time, lease token and a Heap client per environment."""

    now: datetime
    fencing_token: int | None
    clients: dict[int, HeapClient] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)  # environments Heap turned us away from
    lease_lost: bool = False

    def client(self, session: Session, environment_id: int) -> HeapClient:
        """The tick's client for an environment; its token is fetched when first needed."""
        if environment_id not in self.clients:
            env = session.get(Environment, environment_id)
            self.clients[environment_id] = environments.heap_client(env)
        return self.clients[environment_id]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def submit_due(app: Flask, fencing_token: int | None = None, *, now: datetime | None = None) -> int:
    """Send every due chunk of approved or retrying batches; return how many Heap accepted."""
    tick = _Tick(now=now or utcnow(), fencing_token=fencing_token)
    accepted = 0
    with app.app_context():
        with session_scope(write=True) as session:
            if fencing_token is not None and not lease_is_current(session, fencing_token):
                return 0
            if recover_interrupted(session, now=tick.now, grace=sending_grace(app)):
                log.warning("interrupted Heap request(s) queued to be sent again")
        try:
            for batch_id, environment_id in _due_batches(tick.now):
                if environment_id in tick.blocked or not _start(batch_id, tick.now):
                    continue
                for chunk_id in _due_chunks(batch_id, tick.now):
                    outcome = _submit_chunk(tick, batch_id, environment_id, chunk_id)
                    accepted += outcome == ChunkState.ACCEPTED
                    if tick.lease_lost:
                        log.warning("submission tick stopped: the scheduler lease moved on")
                        return accepted
                    if environment_id in tick.blocked:
                        break
        finally:
            tick.close()
    return accepted


def sending_grace(app: Flask) -> timedelta:
    """How long a chunk may stay `sending` before it counts as interrupted.

    Longer than any POST can take (the client's connect + read timeouts), so a chunk still in
    flight in another process is never mistaken for an interrupted one.
    """
    connect, read = app.config.get("DESK_HEAP_TIMEOUT", (5.0, 30.0))
    return timedelta(seconds=float(connect) + float(read) + SENDING_MARGIN_SECONDS)


def _due_batches(now: datetime) -> list[tuple[int, int]]:
    with session_scope(write=False) as session:
        rows = session.exec(
            select(Batch.id, Batch.environment_id)
            .where(
                Batch.state.in_([state.value for state in SUBMITTABLE]),
                sa.or_(Batch.next_attempt_at.is_(None), Batch.next_attempt_at <= now),
            )
            .order_by(Batch.id)
        ).all()
    return [(batch_id, environment_id) for batch_id, environment_id in rows]


def _due_chunks(batch_id: int, now: datetime) -> list[int]:
    with session_scope(write=False) as session:
        return list(
            session.exec(
                select(HeapRequest.id)
                .where(HeapRequest.batch_id == batch_id, due_condition(now))
                .order_by(HeapRequest.chunk_index)
            ).all()
        )


def _start(batch_id: int, now: datetime) -> bool:
    with session_scope(write=True) as session:
        return start_batch(session, batch_id, now=now, size=chunk_size(current_app))


def _submit_chunk(tick: _Tick, batch_id: int, environment_id: int, chunk_id: int) -> str | None:
    """Commit the intent, POST, commit the outcome; return the chunk's new state."""
    setup_error: HeapError | None = None
    with session_scope(write=False) as session:
        planned_hash = session.get(HeapRequest, chunk_id).payload_sha256
        try:
            users = chunk_users(session, chunk_id)
        except (DecryptionError, ValueError) as error:
            # A key removed before `desk keys rotate`, say: wait for the operator's fix, and
            # let the other batches go on (an exception here would stop every submission).
            users = []
            setup_error = UnreadableRequest(f"the subjects of this request cannot be read: {error}")
        try:
            client = tick.client(session, environment_id)
        except (HeapError, DecryptionError) as error:
            # Not Heap's refusal but our settings (key, URL, app_id): wait for a fix, never fail.
            client, setup_error = None, HeapError(f"the environment's Heap settings: {error}")
    sent_hash = payload_sha256(users)
    with session_scope(write=True) as session:
        attempt = claim_for_sending(
            session,
            chunk_id=chunk_id,
            batch_id=batch_id,
            now=tick.now,
            fencing_token=tick.fencing_token,
            subject_count=len(users),
            sent_sha256=sent_hash,
        )
        if attempt is None:
            if tick.fencing_token is not None and not lease_is_current(session, tick.fencing_token):
                tick.lease_lost = True
            return None
        session.commit()  # the intent is durable before Heap hears of it
    outcome: Any
    if client is None or setup_error is not None:
        outcome = setup_error
    elif sent_hash != planned_hash:
        outcome = HeapValidationError("the subjects changed after this request was planned")
    else:
        try:
            outcome = client.delete_users(users)
        except HeapError as error:
            outcome = error
    return _record(tick, batch_id, environment_id, chunk_id, attempt, outcome, users)


def _record(
    tick: _Tick,
    batch_id: int,
    environment_id: int,
    chunk_id: int,
    attempt: int,
    outcome: Any,
    users: list[dict[str, Any]],
) -> str:
    """Store what Heap said (or did not say) about one POST, with its audit entries."""
    try:
        return _store(tick, batch_id, environment_id, chunk_id, attempt, outcome, users)
    except Exception:
        if isinstance(outcome, DeletionAccepted):
            # The chunk stays `sending` and will be resubmitted; the id is no personal data,
            # so the log keeps it for the operator even though the database could not.
            log.error(
                "Heap accepted deletion request %s for Heap request %s, but recording it failed",
                outcome.deletion_request_id,
                chunk_id,
            )
        raise


def _store(
    tick: _Tick,
    batch_id: int,
    environment_id: int,
    chunk_id: int,
    attempt: int,
    outcome: Any,
    users: list[dict[str, Any]],
) -> str:
    with session_scope(write=True) as session:
        batch = lock_batch(session, batch_id)
        common = {"batch": batch, "chunk_id": chunk_id, "attempt": attempt, "now": tick.now}
        if isinstance(outcome, HeapOutcomeUnknown):
            tick.blocked.add(environment_id)
            retry_at = backoff(attempt, tick.now)
            state = record_unknown(session, reason=outcome.message, retry_at=retry_at, **common)
        elif isinstance(outcome, Exception) and is_permanent(outcome):
            state = record_failed(session, error=outcome, users=users, **common)
        elif isinstance(outcome, Exception):
            # Heap's answer concerns the environment: nothing more is sent to it this run
            # (a request the desk itself cannot read concerns that request alone).
            if not isinstance(outcome, UnreadableRequest):
                tick.blocked.add(environment_id)
            retry_at = retry_at_for(outcome, attempt=attempt, now=tick.now)
            state = record_retry(
                session,
                error=outcome,
                users=users,
                retry_at=retry_at,
                **common,
            )
        else:
            state = record_accepted(session, result=outcome, **common)
        session.commit()
    if state == ChunkState.WAITING_RETRY and not isinstance(
        outcome, HeapOutcomeUnknown | UnreadableRequest
    ):
        with session_scope(write=True) as session:
            hold_environment(
                session, environment_id=environment_id, except_batch=batch_id, retry_at=retry_at
            )
    return state


def retry_failed(session: Session, *, actor: str, batch_id: int) -> Batch:
    """Queue a failed or waiting batch's refused chunks again, now; commits."""
    batch = lock_batch(session, batch_id)
    if batch is None:
        raise SubmissionError(f"There is no batch {batch_id}.")
    if batch.state not in (BatchState.FAILED, BatchState.WAITING_RETRY):
        raise SubmissionError(
            f"Batch {batch_id} is {batch.state.replace('_', ' ')}; only a failed batch or one "
            "waiting to retry can be retried."
        )
    requeue_for_retry(session, actor=actor, batch=batch)
    session.commit()
    return batch
