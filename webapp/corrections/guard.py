"""What the desk's own records say before a correction is sent.

The re-ingestion guard: add_user_properties, track and identify on a person the desk has
deleted (or is deleting) would re-create or merge that person in Heap, undoing the erasure.
Identify history: Heap silently ignores an identify that breaks its integrity rules (one
identity per user_id, ever; at most 10 user_ids per identity a month), answering 200 anyway.
Both look only at fingerprints: the desk keeps no raw identifier to compare.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from webapp.corrections.bulk import chunks
from webapp.corrections.plans import CorrectionInputError, Named, Notice
from webapp.crypto import subject_fingerprint
from webapp.models import Batch, BatchState, Correction, CorrectionState, RowClass, Subject
from webapp.models import CorrectionOperation as Op

# Heap's identify limit: at most this many user_ids per identity within a month.
IDENTIFY_LIMIT = 10
IDENTIFY_WINDOW = timedelta(days=30)
# Batches that no longer mean "deleted or being deleted".
_INACTIVE_BATCHES = (BatchState.REJECTED.value, BatchState.CANCELLED.value)
# Identify calls that Heap has (or may have) received.
_COUNTED_STATES = (CorrectionState.SUCCEEDED.value, CorrectionState.SENDING.value)
MAX_ROWS_NAMED = 50


class GuardRefused(CorrectionInputError):
    """The correction names people the desk has deleted or is deleting, without an override."""

    code = "reingestion_guard"

    def __init__(self, message: str, rows: list[int]) -> None:
        super().__init__(message)
        self.rows = rows


@dataclass
class GuardHit:
    """A named person found among the desk's deletions, and in which batches."""

    named: Named
    fingerprint: str
    batch_ids: list[int]


def fingerprint_of(named: Named) -> str:
    """The subject fingerprint of a named person (the join key with the deletion batches)."""
    return subject_fingerprint(named.kind, named.value)


def deleting_batches(session: Session, fingerprints: Iterable[str]) -> dict[str, set[int]]:
    """Fingerprints of valid subjects in live batches, with their batches.

    Every environment counts, not only the correction's: one Heap deletion erases the person in
    all environments of the account, so writing about them anywhere would undo part of it.
    """
    found: dict[str, set[int]] = {}
    unique = sorted(set(fingerprints))
    for _, piece in chunks(unique, 500):  # keep IN lists short for both databases
        query = (
            select(Subject.fingerprint, Subject.batch_id)
            .join(Batch, Batch.id == Subject.batch_id)
            .where(
                Subject.fingerprint.in_(list(piece)),
                Subject.classification == RowClass.VALID.value,
                Batch.state.not_in(_INACTIVE_BATCHES),
            )
        )
        for fingerprint, batch_id in session.exec(query).all():
            found.setdefault(fingerprint, set()).add(batch_id)
    return found


def guard_hits(session: Session, named: list[Named]) -> list[GuardHit]:
    """The named people the desk has deleted or is deleting (in any environment)."""
    prints = [fingerprint_of(item) for item in named]
    found = deleting_batches(session, prints)
    return [
        GuardHit(item, fp, sorted(found[fp]))
        for item, fp in zip(named, prints, strict=True)
        if fp in found
    ]


def _series(values: list[int]) -> str:
    shown = ", ".join(str(v) for v in values[:MAX_ROWS_NAMED])
    more = len(values) - MAX_ROWS_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def guard_message(hits: list[GuardHit]) -> str:
    """Explain a guard refusal: which rows (or which identifier), which batches, what to do."""
    batches = _series(sorted({b for hit in hits for b in hit.batch_ids}))
    rows = sorted({hit.named.row for hit in hits if hit.named.row is not None})
    if rows:
        return (
            f"Refused: row(s) {_series(rows)} name people the desk has deleted or is deleting "
            f"(batch {batches}). Sending would re-create them in Heap. Remove those rows, or "
            "give an override reason to send the whole file anyway; the reason is audited."
        )
    kinds = " and ".join(sorted({hit.named.kind for hit in hits}))
    return (
        f"Refused: this {kinds} belongs to a person the desk has deleted or is deleting "
        f"(batch {batches}). Sending would re-create or merge them in Heap. Give an override "
        "reason to send anyway; the reason is audited."
    )


def check_guard(hits: list[GuardHit], override_reason: str | None) -> None:
    """Refuse unless an override reason was given."""
    if hits and not override_reason:
        rows = sorted({hit.named.row for hit in hits if hit.named.row is not None})
        raise GuardRefused(guard_message(hits), rows)


def identify_notices(
    session: Session, environment_id: int, identity_fp: str, user_id_fp: str, now: datetime
) -> list[Notice]:
    """Warnings from earlier identify corrections that Heap would make it ignore silently."""
    earlier = select(Correction.id).where(
        Correction.environment_id == environment_id,
        Correction.operation == Op.IDENTIFY.value,
        Correction.state.in_(_COUNTED_STATES),
    )
    notices = []
    taken = earlier.where(
        Correction.user_id_fingerprint == user_id_fp,
        Correction.identity_fingerprint != identity_fp,
    )
    if session.exec(taken.limit(1)).first() is not None:
        notices.append(
            Notice(
                "identify_user_id_taken",
                "The desk's record shows this user_id already identified with another "
                "identity. Heap allows one identity per user_id, ever: it would ignore this "
                "call silently (and still answer 200).",
                confirm=True,
            )
        )
    count = session.exec(
        select(sa.func.count(sa.distinct(Correction.user_id_fingerprint))).where(
            Correction.environment_id == environment_id,
            Correction.operation == Op.IDENTIFY.value,
            Correction.state.in_(_COUNTED_STATES),
            Correction.identity_fingerprint == identity_fp,
            Correction.user_id_fingerprint != user_id_fp,
            Correction.created_at >= now - IDENTIFY_WINDOW,
        )
    ).one()
    if count >= IDENTIFY_LIMIT:
        notices.append(
            Notice(
                "identify_identity_limit",
                f"The desk's record shows this identity identified with {count} user_ids in "
                f"the last 30 days. Heap allows at most {IDENTIFY_LIMIT} a month: it would "
                "ignore this call silently.",
                confirm=True,
            )
        )
    return notices
