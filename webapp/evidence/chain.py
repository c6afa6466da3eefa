"""Which audit entries a piece of evidence is about, and the signed tree head that covers them.

A batch's entries are its own, its Heap requests', its subjects' and the retention purges that
name it; a subject's are its own, its Heap request's, its batch's upload and approval and the
purges naming that batch. They are what a certificate's status history lists and what an
evidence pack or a subject receipt carries, each with its inclusion proof.

Every selection is one query per kind of target on an index — (target_type, target_id, seq)
or (action, seq) — so its cost follows the entries found, never the length of the trail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, select

from webapp.models import AuditEntry, Subject
from webapp.trail import audit

PURGE_ACTION = "retention.purged"
# What a subject's receipt shows of its batch: who uploaded the list, who approved it.
SUBMISSION_ACTIONS = ("batch.uploaded", "batch.approved")
# Downloads of a subject's evidence are audited about the subject, but prove nothing of its
# deletion: a receipt leaves them out (and with them the e-mails of whoever downloaded).
DOWNLOAD_ACTION = "evidence.downloaded"


@dataclass
class ChainFacts:
    """The entries about the evidence (seq order) and the signed tree head it names."""

    entries: list[dict]
    # DESIGN.md's STH shape; None before the desk signed its first head.
    sth: dict | None
    # The targets with entries of their own: {"batch": ["4"], "heap_request": ["3", …], …}.
    targets: dict[str, list[str]] = field(default_factory=dict)

    @property
    def seqs(self) -> list[int]:
        return [entry["seq"] for entry in self.entries]

    @property
    def first_seq(self) -> int | None:
        return self.entries[0]["seq"] if self.entries else None

    @property
    def last_seq(self) -> int | None:
        return self.entries[-1]["seq"] if self.entries else None

    @property
    def covered(self) -> bool:
        """True when the tree head holds every entry listed (always so in a pack)."""
        return self.sth is not None and (self.last_seq or 0) <= self.sth["tree_size"]


def _about(session: Session, target_type: str, target_ids, max_seq: int) -> list[dict]:
    """Entries about targets of one type (ids: a list or a subquery), on the target index."""
    columns = [getattr(AuditEntry, name) for name in audit.ROW_FIELDS]
    query = sa.select(*columns).where(
        AuditEntry.target_type == target_type,
        AuditEntry.target_id.in_(target_ids),
        AuditEntry.seq <= max_seq,
    )
    return [audit.row_dict(row) for row in session.connection().execute(query)]


def _purges_naming(session: Session, batch_id: int, max_seq: int) -> list[dict]:
    """Retention purges that name the batch (a purge entry lists the batches it emptied)."""
    columns = [getattr(AuditEntry, name) for name in audit.ROW_FIELDS]
    query = sa.select(*columns).where(AuditEntry.action == PURGE_ACTION, AuditEntry.seq <= max_seq)
    entries = (audit.row_dict(row) for row in session.connection().execute(query))
    return [e for e in entries if batch_id in e["details"].get("batch_ids", [])]


def _in_order(*groups: list[dict]) -> list[dict]:
    unique = {entry["seq"]: entry for group in groups for entry in group}
    return [unique[seq] for seq in sorted(unique)]


def batch_entries(
    session: Session, batch_id: int, request_ids: list[int], max_seq: int
) -> list[dict]:
    """The entries about a batch, its Heap requests, its subjects and their purge."""
    subjects = select(sa.cast(Subject.id, sa.String)).where(Subject.batch_id == batch_id)
    return _in_order(
        _about(session, "batch", [str(batch_id)], max_seq),
        _about(session, "heap_request", [str(i) for i in request_ids], max_seq),
        _about(session, "subject", subjects, max_seq),
        _purges_naming(session, batch_id, max_seq),
    )


def subject_entries(session: Session, subject: Subject, max_seq: int) -> list[dict]:
    """The entries that show one subject was approved, sent, completed (and purged)."""
    request_ids = [str(subject.heap_request_id)] if subject.heap_request_id else []
    own = _about(session, "subject", [str(subject.id)], max_seq)
    upload = _about(session, "batch", [str(subject.batch_id)], max_seq)
    return _in_order(
        [entry for entry in own if entry["action"] != DOWNLOAD_ACTION],
        _about(session, "heap_request", request_ids, max_seq),
        [entry for entry in upload if entry["action"] in SUBMISSION_ACTIONS],
        _purges_naming(session, subject.batch_id, max_seq),
    )


def chain_facts(entries: list[dict], sth: dict | None) -> ChainFacts:
    """The facts about `entries` under the tree head `sth`."""
    targets: dict[str, set[str]] = {}
    for entry in entries:
        if entry["action"] != PURGE_ACTION:
            targets.setdefault(entry["target_type"], set()).add(entry["target_id"])
    return ChainFacts(
        entries=entries,
        sth=sth,
        targets={kind: sorted(ids, key=int) for kind, ids in sorted(targets.items())},
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
