"""The facts a batch's (or one subject's) evidence states, read in one place for every format.

Certificates, the evidence pack and the pages all draw on these functions, so a PDF, a zip and a
page can never disagree. Nothing here reads a raw identifier except `masked_identifier`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from webapp.crypto import DecryptionError, decrypt
from webapp.erasure import deadlines
from webapp.erasure.batches import BatchNotFound
from webapp.erasure.queries import requests_with_ids
from webapp.evidence import tree_heads
from webapp.evidence.chain import ChainFacts, batch_entries, chain_facts, subject_entries
from webapp.models import (
    Batch,
    BatchState,
    Environment,
    HeapDeletionId,
    HeapRequest,
    RowClass,
    Subject,
    SubjectState,
    User,
    utcnow,
)
from webapp.trail import tree

# Entries about the batch itself and its Heap requests are listed one by one; entries about
# single subjects (deadline extensions) are counted, so 10,000 of them stay one line.
HISTORY_LIMIT = 200
WITHDRAWN = (BatchState.REJECTED.value, BatchState.CANCELLED.value)
# Batch states in which nothing has gone to Heap, and what its unsent subjects' status says:
# a label that is true in every state ("sent" only once something was).
NOT_SENT = {
    BatchState.AWAITING_APPROVAL.value: "not sent: awaiting approval",
    BatchState.APPROVED.value: "not sent yet: approved",
    BatchState.REJECTED.value: "not sent: batch rejected",
    BatchState.CANCELLED.value: "not sent: batch cancelled",
}


@dataclass
class RequestFact:
    """One Heap deletion request (chunk) and every deletion_request_id Heap returned for it."""

    request: HeapRequest
    deletion_ids: list[HeapDeletionId]


@dataclass
class DeadlineFacts:
    """How a batch's valid subjects stand against their Art. 12(3) deadlines."""

    met: int = 0
    missed: int = 0
    open: int = 0
    overdue: int = 0
    extended: int = 0
    first_due: date | None = None
    last_due: date | None = None


@dataclass
class BatchEvidence:
    """Everything a batch certificate, report or pack says about the batch."""

    batch: Batch
    environment: Environment
    people: dict[str, str | None]
    counts: dict[str, int]
    requests: list[RequestFact]
    deadlines: DeadlineFacts
    history: list[dict]
    history_total: int
    subject_actions: dict[str, int]
    chain: ChainFacts
    issued_at: datetime = field(default_factory=utcnow)

    @property
    def complete(self) -> bool:
        return self.batch.state == BatchState.COMPLETE.value

    @property
    def valid_label(self) -> str:
        """What the valid count is, true in every state: "Valid (not sent: batch rejected)"."""
        c = self.counts
        sent = c[SubjectState.SUBMITTED.value] + c[SubjectState.COMPLETE.value]
        sent += c[SubjectState.FAILED.value]
        if not sent and self.batch.state in NOT_SENT:
            return f"Valid ({NOT_SENT[self.batch.state]})"
        if not c[SubjectState.PENDING.value]:
            return "Valid (sent)"
        return f"Valid ({sent:,} of them sent)"

    @property
    def unsent_label(self) -> str:
        """The subjects not sent: never, once the batch was withdrawn."""
        return "Never sent" if self.batch.state in WITHDRAWN else "Not sent yet"


@dataclass
class SubjectEvidence:
    """Everything a per-subject certificate says."""

    subject: Subject
    batch: Batch
    environment: Environment
    identifier: str | None
    request: RequestFact | None
    deadline: str
    history: list[dict]
    chain: ChainFacts
    issued_at: datetime = field(default_factory=utcnow)


def deadline_status(
    *,
    classification: str,
    state: str,
    due_on: date,
    completed_at: datetime | None,
    batch_state: str,
    today: date,
    received_on: date | None = None,
    extension_recorded_on: date | None = None,
) -> str:
    """'met', 'missed', 'open', 'overdue', 'withdrawn' or 'not applicable' for one subject.

    The one place every certificate, receipt, report and page takes "met" from. An extension
    recorded after the first month had ended cannot make the deadline met: the subject is
    'missed; extended late on D' once complete, 'overdue; extended late on D' until then.
    """
    if classification != RowClass.VALID.value:
        return "not applicable"
    late_on = (
        deadlines.extended_late_on(received_on, extension_recorded_on) if received_on else None
    )
    complete = state == SubjectState.COMPLETE.value and completed_at
    if complete and late_on is None:
        return "met" if completed_at.date() <= due_on else "missed"
    late = f"; extended late on {late_on.isoformat()}" if late_on else ""
    if complete:
        return f"missed{late}"
    if batch_state in WITHDRAWN:
        return "withdrawn"
    return f"overdue{late}" if late or today > due_on else "open"


def subject_status(state: str, batch_state: str) -> str:
    """A subject's state as reports show it: a pending one in a batch never sent says why."""
    if state == SubjectState.PENDING.value and batch_state in NOT_SENT:
        return NOT_SENT[batch_state]
    return state


def deadline_kind(status: str) -> str:
    """'met', 'missed', 'open', 'overdue', … without what a late extension adds."""
    return status.partition(";")[0]


def subject_deadline(subject: Subject, batch_state: str, today: date) -> str:
    """deadline_status of a Subject row."""
    return deadline_status(
        classification=subject.classification,
        state=subject.state,
        due_on=subject.due_on,
        completed_at=subject.completed_at,
        batch_state=batch_state,
        today=today,
        received_on=subject.received_on,
        extension_recorded_on=subject.extension_recorded_on,
    )


def mask(kind: str | None, value: str) -> str:
    """Enough of an identifier to recognise it, not to read it: a***@b***.com, 12***89."""
    if kind == "identity" and "@" in value:
        local, _, domain = value.rpartition("@")
        name, dot, tld = domain.rpartition(".")
        shown = f"{name[:1]}***{dot}{tld}" if dot else f"{domain[:1]}***"
        return f"{local[:1]}***@{shown}"
    if len(value) >= 6:
        return f"{value[:2]}***{value[-2:]}"
    return f"{value[:1]}***" if len(value) > 2 else "***"


def identifier(subject: Subject, *, masked: bool = False) -> str | None:
    """The subject's identifier while retained (None once purged or unreadable)."""
    return identifier_of(subject.kind, subject.identifier_encrypted, masked=masked)


def identifier_of(kind: str | None, encrypted: str | None, *, masked: bool = False) -> str | None:
    """An identifier from its stored (encrypted) form; None once purged or unreadable."""
    if not encrypted:
        return None
    try:
        value = decrypt(encrypted)
    except DecryptionError:
        return None
    return mask(kind, value) if masked else value


def requests_of(session: Session, batch_id: int) -> list[RequestFact]:
    """The batch's Heap requests in chunk order, each with all its deletion ids."""
    return [RequestFact(chunk, ids) for chunk, ids in requests_with_ids(session, batch_id)]


def _counts(session: Session, batch: Batch) -> dict[str, int]:
    states = dict(
        session.exec(
            select(Subject.state, sa.func.count())
            .where(Subject.batch_id == batch.id)
            .group_by(Subject.state)
        ).all()
    )
    purged = session.exec(
        select(sa.func.count()).where(Subject.batch_id == batch.id, Subject.purged_at.is_not(None))
    ).one()
    return {
        "rows": batch.rows_total,
        "valid": batch.valid_count,
        "malformed": batch.malformed_count,
        "duplicate": batch.duplicate_count,
        "already_requested": batch.already_requested_count,
        "excluded": batch.excluded_count,
        **{state.value: states.get(state.value, 0) for state in SubjectState},
        "identifiers_purged": purged,
    }


def _deadlines(session: Session, batch: Batch, today: date) -> DeadlineFacts:
    facts = DeadlineFacts()
    query = select(
        Subject.classification,
        Subject.state,
        Subject.due_on,
        Subject.completed_at,
        Subject.extension_months,
        Subject.received_on,
        Subject.extension_recorded_on,
    ).where(Subject.batch_id == batch.id, Subject.classification == RowClass.VALID.value)
    for classification, state, due, completed_at, extension, received, recorded in session.exec(
        query
    ):
        status = deadline_kind(
            deadline_status(
                classification=classification,
                state=state,
                due_on=due,
                completed_at=completed_at,
                batch_state=batch.state,
                today=today,
                received_on=received,
                extension_recorded_on=recorded,
            )
        )
        if status in ("met", "missed", "open", "overdue"):
            setattr(facts, status, getattr(facts, status) + 1)
        facts.extended += 1 if extension else 0
        facts.first_due = min(facts.first_due or due, due)
        facts.last_due = max(facts.last_due or due, due)
    return facts


def _people(session: Session, batch: Batch) -> dict[str, str | None]:
    ids = {batch.uploaded_by, batch.approved_by, batch.rejected_by, batch.cancelled_by} - {None}
    emails = dict(session.exec(select(User.id, User.email).where(User.id.in_(ids))).all())
    return {
        "uploaded_by": emails.get(batch.uploaded_by),
        "approved_by": emails.get(batch.approved_by),
        "rejected_by": emails.get(batch.rejected_by),
        "cancelled_by": emails.get(batch.cancelled_by),
    }


def _under(session: Session, sth: dict | None) -> tuple[int, dict | None]:
    """(last seq to read, head to name): the given head, or the trail now and its newest head."""
    if sth is not None:
        return sth["tree_size"], sth
    newest = tree_heads.latest(session)
    return tree.size(session), tree_heads.sth_dict(newest) if newest else None


def batch_evidence(
    session: Session, batch_id: int, *, sth: dict | None = None, today: date | None = None
) -> BatchEvidence:
    """Assemble a batch's evidence: the entries `sth` holds, or all of them and the newest head."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise BatchNotFound(f"There is no batch {batch_id}.")
    max_seq, sth = _under(session, sth)
    requests = requests_of(session, batch_id)
    entries = batch_entries(session, batch_id, [r.request.id for r in requests], max_seq)
    listed = [e for e in entries if e["target_type"] != "subject"]
    return BatchEvidence(
        batch=batch,
        environment=session.get(Environment, batch.environment_id),
        people=_people(session, batch),
        counts=_counts(session, batch),
        requests=requests,
        deadlines=_deadlines(session, batch, today or deadlines.today_utc()),
        history=listed[:HISTORY_LIMIT],
        history_total=len(listed),
        subject_actions=dict(
            Counter(e["action"] for e in entries if e["target_type"] == "subject")
        ),
        chain=chain_facts(entries, sth),
    )


def subject_evidence(
    session: Session, subject_id: int, *, sth: dict | None = None, today: date | None = None
) -> SubjectEvidence:
    """Assemble one subject's evidence, under `sth` or the newest head (as batch_evidence)."""
    subject = session.get(Subject, subject_id)
    if subject is None:
        raise deadlines.SubjectNotFound(f"There is no subject {subject_id}.")
    batch = session.get(Batch, subject.batch_id)
    max_seq, sth = _under(session, sth)
    requests = [
        r for r in requests_of(session, batch.id) if r.request.id == subject.heap_request_id
    ]
    entries = subject_entries(session, subject, max_seq)
    return SubjectEvidence(
        subject=subject,
        batch=batch,
        environment=session.get(Environment, batch.environment_id),
        identifier=identifier(subject, masked=True),
        request=requests[0] if requests else None,
        deadline=subject_deadline(subject, batch.state, today or deadlines.today_utc()),
        history=entries,
        chain=chain_facts(entries, sth),
    )
