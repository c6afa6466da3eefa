"""Where the audit chain stood for a piece of evidence: its head, and the entries about a batch.

A batch's entries are its own, its Heap requests', its subjects' and the retention purges that
name it; they are what a certificate's status history and an evidence pack's manifest list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, select

from webapp.models import AuditCheckpoint, AuditEntry, Subject
from webapp.trail import audit

PURGE_ACTION = "retention.purged"


@dataclass
class ChainFacts:
    """Where the audit trail stood when the evidence was issued."""

    head_seq: int
    head_hash: str
    seqs: list[int]
    checkpoint: AuditCheckpoint | None
    # Heap requests and subjects with entries of their own: {"heap_request": ["3", …], …}.
    targets: dict[str, list[str]] = field(default_factory=dict)

    @property
    def first_seq(self) -> int | None:
        return self.seqs[0] if self.seqs else None

    @property
    def last_seq(self) -> int | None:
        return self.seqs[-1] if self.seqs else None


def chain_head(session: Session) -> tuple[int, str]:
    """(seq, hash) of the audit chain's head now."""
    row = session.exec(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    return (row[0], row[1]) if row else (0, audit.GENESIS_HASH)


def latest_checkpoint(session: Session, head_seq: int) -> AuditCheckpoint | None:
    """The newest checkpoint recorded in the chain up to `head_seq`."""
    query = select(AuditCheckpoint).where(AuditCheckpoint.seq < head_seq)
    return session.exec(query.order_by(AuditCheckpoint.seq.desc()).limit(1)).first()


def _targets(batch_id: int, request_ids: list[int], subject_ids=None):
    subjects = subject_ids
    if subjects is None:
        subjects = select(sa.cast(Subject.id, sa.String)).where(Subject.batch_id == batch_id)
    return sa.or_(
        sa.and_(AuditEntry.target_type == "batch", AuditEntry.target_id == str(batch_id)),
        sa.and_(
            AuditEntry.target_type == "heap_request",
            AuditEntry.target_id.in_([str(i) for i in request_ids]),
        ),
        sa.and_(AuditEntry.target_type == "subject", AuditEntry.target_id.in_(subjects)),
    )


def batch_entries(
    session: Session, batch_id: int, request_ids: list[int], max_seq: int, subject_ids=None
) -> Iterator[dict]:
    """The audit entries about a batch, its Heap requests, its subjects and their purge."""
    columns = [getattr(AuditEntry, name) for name in audit.ROW_FIELDS]
    about = _targets(batch_id, request_ids, subject_ids)
    purges = AuditEntry.action == PURGE_ACTION
    query = (
        sa.select(*columns)
        .where(AuditEntry.seq <= max_seq, sa.or_(about, purges))
        .order_by(AuditEntry.seq)
    )
    for row in session.connection().execute(query):
        entry = audit.row_dict(row)
        if entry["action"] != PURGE_ACTION or batch_id in entry["details"].get("batch_ids", []):
            yield entry


def chain_facts(session: Session, entries: list[dict], head: tuple[int, str]) -> ChainFacts:
    targets: dict[str, set[str]] = {}
    for entry in entries:
        if entry["target_type"] in ("heap_request", "subject"):
            targets.setdefault(entry["target_type"], set()).add(entry["target_id"])
    return ChainFacts(
        head_seq=head[0],
        head_hash=head[1],
        seqs=[e["seq"] for e in entries],
        checkpoint=latest_checkpoint(session, head[0]),
        targets={kind: sorted(ids, key=int) for kind, ids in targets.items()},
    )


def summary(entry: dict, limit: int = 140) -> str:
    """An entry's details in one short line (long hashes shortened)."""
    parts = []
    for key, value in sorted(entry["details"].items()):
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if isinstance(value, str) and len(value) == 64:
            text = value[:12] + "…"
        parts.append(f"{key}={text}")
    line = ", ".join(parts)
    return line if len(line) <= limit else line[: limit - 1] + "…"
