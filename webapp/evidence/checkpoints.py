"""Signed checkpoints: the desk signs the audit chain's head (seq, hash, time) with Ed25519.

A checkpoint pins the chain: anyone holding the public key can later prove that entries up to
its seq were neither rewritten nor cut off, even by someone able to recompute every hash. The
key is the desk's signing key (webapp/signing.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, select

from webapp.db import session_scope
from webapp.evidence.checkpoint_rules import (
    CHECKPOINT_ACTION,
    check_checkpoints,
    checkpoint_message,
)
from webapp.evidence.signing import (
    PublicKey,
    SigningKeyError,
    public_key,
    raw_public_key,
    signing_key,
    verify_signature,
)
from webapp.evidence.verifier_script import key_id
from webapp.lease import lease_is_current
from webapp.models import AuditCheckpoint, AuditEntry, utcnow
from webapp.trail import audit

log = logging.getLogger(__name__)

# Every entry is covered by a signed checkpoint within this long of being written.
DEFAULT_INTERVAL = timedelta(days=1)


class CheckpointError(ValueError):
    """A checkpoint cannot be signed as asked."""


def sign_checkpoint(session: Session, *, actor: str, app: Flask | None = None) -> AuditCheckpoint:
    """Sign the chain's head now, store the checkpoint and audit it; commits."""
    key = signing_key(app)  # before taking the chain lock: a missing key fails fast
    seq, head_hash = audit.locked_link(session)
    if seq == 0:
        raise CheckpointError("The audit trail is empty: there is nothing to sign yet.")
    at = audit.format_at(utcnow())
    public = raw_public_key(key)
    row = AuditCheckpoint(
        seq=seq,
        hash=head_hash,
        at=at,
        signature=key.sign(checkpoint_message(seq, head_hash, at)).hex(),
        key_id=key_id(public),
        public_key=public.hex(),
        actor=actor,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=CHECKPOINT_ACTION,
        target_type="audit_checkpoint",
        target_id=row.id,
        details=checkpoint_dict(row),
    )
    session.commit()
    log.info("audit checkpoint signed at seq %s", seq)
    return row


def checkpoint_dict(row: AuditCheckpoint) -> dict:
    """A checkpoint as the API, checkpoints.jsonl and its audit entry show it."""
    return {
        "seq": row.seq,
        "hash": row.hash,
        "at": row.at,
        "signature": row.signature,
        "key_id": row.key_id,
        "public_key": row.public_key,
    }


def list_checkpoints(session: Session, *, max_seq: int | None = None) -> list[AuditCheckpoint]:
    """Every checkpoint in seq order (only those recorded in the chain up to `max_seq`)."""
    query = select(AuditCheckpoint).order_by(AuditCheckpoint.seq)
    if max_seq is not None:
        # A checkpoint is recorded by the entry right after the head it signs.
        query = query.where(AuditCheckpoint.seq < max_seq)
    return list(session.exec(query).all())


def page(session: Session, *, after: int = 0, limit: int = 100) -> list[AuditCheckpoint]:
    """Checkpoints after seq `after`, oldest first, at most `limit`."""
    query = select(AuditCheckpoint).where(AuditCheckpoint.seq > after)
    return list(session.exec(query.order_by(AuditCheckpoint.seq).limit(limit)).all())


def latest(session: Session) -> AuditCheckpoint | None:
    """The most recent checkpoint, or None."""
    query = select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)
    return session.exec(query).first()


def checkpoint_due(session: Session, *, every: timedelta = DEFAULT_INTERVAL, now=None) -> bool:
    """True when an entry not yet covered by a checkpoint is older than `every`."""
    last = latest(session)
    # The entry right after a checkpoint's head is the checkpoint's own record.
    first_unsigned = last.seq + 2 if last else 1
    oldest = session.exec(
        select(AuditEntry.at)
        .where(AuditEntry.seq >= first_unsigned)
        .order_by(AuditEntry.seq)
        .limit(1)
    ).first()
    return oldest is not None and oldest <= audit.format_at((now or utcnow()) - every)


@dataclass
class CheckpointReport:
    """What checking the stored checkpoints against the chain found."""

    checkpoints: int
    trusted_key_id: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _entries_at(session: Session, seqs: set[int]) -> dict[int, dict]:
    found: dict[int, dict] = {}
    ordered = sorted(seqs)
    columns = [getattr(AuditEntry, name) for name in audit.ROW_FIELDS]
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        rows = session.connection().execute(sa.select(*columns).where(AuditEntry.seq.in_(chunk)))
        found.update({row[0]: audit.row_dict(row) for row in rows})
    return found


def verify_checkpoints(session: Session, *, app: Flask | None = None) -> CheckpointReport:
    """Check every checkpoint's signature and that the stored chain still extends each one."""
    rows = [checkpoint_dict(row) for row in list_checkpoints(session)]
    try:
        trusted = public_key(app)
    except SigningKeyError as error:
        if not rows:
            return CheckpointReport(0, None)
        return CheckpointReport(len(rows), None, [f"the signatures cannot be checked: {error}"])
    end = session.exec(select(sa.func.max(AuditEntry.seq))).one() or 0
    entries = _entries_at(session, {r["seq"] for r in rows} | {r["seq"] + 1 for r in rows})
    recorded = [
        audit.row_dict(row)
        for row in audit.iter_rows(session, action=CHECKPOINT_ACTION, batch_size=1000)
    ]
    problems = check_checkpoints(rows, entries, recorded, end, trusted.raw.hex(), verify_signature)
    return CheckpointReport(len(rows), trusted.key_id, problems)


def scheduled_checkpoint(app: Flask, fencing_token: int) -> None:
    """Sign a checkpoint once an unsigned entry is a day old (at most daily, none when idle)."""
    every = timedelta(seconds=int(app.config.get("DESK_CHECKPOINT_EVERY_SECONDS", 86400)))
    with session_scope(write=False, app=app) as session:
        if not checkpoint_due(session, every=every):
            return
    with session_scope(write=True, app=app) as session:
        if not lease_is_current(session, fencing_token):
            return
        try:
            sign_checkpoint(session, actor=audit.SYSTEM_ACTOR, app=app)
        except SigningKeyError as error:
            log.error("no audit checkpoint signed: %s", error)


@dataclass
class Overview:
    """The checkpoints page: the newest checkpoints, their verification and the public key."""

    recent: list[AuditCheckpoint]
    total: int
    report: CheckpointReport
    public: PublicKey | None
    key_problem: str | None


def overview(session: Session, *, limit: int = 100) -> Overview:
    """Everything the checkpoints page shows, in one call."""
    query = select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(limit)
    try:
        public, key_problem = public_key(), None
    except SigningKeyError as error:
        public, key_problem = None, str(error)
    return Overview(
        recent=list(session.exec(query).all()),
        total=session.exec(select(sa.func.count()).select_from(AuditCheckpoint)).one(),
        report=verify_checkpoints(session),
        public=public,
        key_problem=key_problem,
    )
