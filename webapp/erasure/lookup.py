"""“Was this person deleted, when, in which batch?” — answered from fingerprints alone.

Lookups never read the encrypted identifiers, so they keep working after the retention purge.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from webapp.crypto import subject_fingerprint
from webapp.db import WRITE_OPTION, session_scope
from webapp.erasure.queries import deletion_ids_by_request
from webapp.heap.errors import HeapValidationError
from webapp.heap.validation import normalise_user_id, validate_identity
from webapp.models import Batch, Environment, HeapDeletionId, HeapRequest, Subject
from webapp.trail import audit

KINDS = ("identity", "user_id")


class LookupRefused(ValueError):
    """The identifier to look up is not usable; the message says why."""


@dataclass
class Hit:
    """One row that held the subject: its batch, Heap request and every deletion id."""

    subject: Subject
    batch: Batch
    environment: str
    heap_request: HeapRequest | None
    deletion_ids: list[HeapDeletionId]


def fingerprint_for(kind: str, value: str) -> str:
    """Validate an identifier as an upload would, and fingerprint it."""
    if kind not in KINDS:
        raise LookupRefused("Say whether you are looking up an identity or a user_id.")
    text = (value or "").strip()
    try:
        text = str(normalise_user_id(text)) if kind == "user_id" else validate_identity(text)
    except HeapValidationError as error:
        raise LookupRefused(f"That {kind} cannot be looked up: {error.reason}.") from None
    return subject_fingerprint(kind, text)


def _hits(session: Session, query) -> list[Hit]:
    rows = session.exec(
        query.join(Batch, Batch.id == Subject.batch_id)
        .join(Environment, Environment.id == Subject.environment_id)
        .outerjoin(HeapRequest, HeapRequest.id == Subject.heap_request_id)
        .order_by(Subject.batch_id.desc(), Subject.row_number)
    ).all()
    ids = deletion_ids_by_request(session, [c.id for _, _, _, c in rows if c is not None])
    return [
        Hit(subject, batch, env, chunk, ids.get(chunk.id, []) if chunk else [])
        for subject, batch, env, chunk in rows
    ]


def _select():
    return select(Subject, Batch, Environment.name, HeapRequest)


def lookup(
    session: Session,
    *,
    kind: str,
    value: str,
    environment_id: int | None = None,
    actor: str | None = None,
) -> list[Hit]:
    """Every row, in every batch (of one environment, if given), that held this subject.

    With an `actor`, the search itself is audited (by fingerprint): who looked for whom is
    personal-data processing too.
    """
    fingerprint = fingerprint_for(kind, value)
    query = _select().where(Subject.fingerprint == fingerprint)
    if environment_id:
        query = query.where(Subject.environment_id == environment_id)
    hits = _hits(session, query)
    if actor:
        _audit_lookup(session, actor, kind, fingerprint, environment_id, len(hits))
    return hits


def _audit_lookup(
    session: Session, actor: str, kind: str, fingerprint: str, environment_id, found: int
) -> None:
    record_search(
        session,
        actor=actor,
        action="subject.looked_up",
        target_type="subject_fingerprint",
        target_id=fingerprint[:16],
        details={
            "kind": kind,
            "fp": fingerprint,
            "environment_id": environment_id,
            "found": found,
        },
    )


def record_search(session: Session, **entry) -> None:
    """Audit a search, committed before the answer is shown.

    A POSTed page's session already holds SQLite's write lock (BEGIN IMMEDIATE): the entry goes
    in its transaction, as a second write session would wait on that lock until it timed out.
    The API's and MCP's reads hold a read session: the entry gets a short transaction of its own.
    """
    if session.get_bind().get_execution_options().get(WRITE_OPTION):
        audit.record(session, **entry)
        session.commit()
        return
    with session_scope(write=True) as own:
        audit.record(own, **entry)
        own.commit()


def subject_record(session: Session, subject_id: int) -> Hit | None:
    """One subject row with its batch and Heap request, or None."""
    hits = _hits(session, _select().where(Subject.id == subject_id))
    return hits[0] if hits else None
