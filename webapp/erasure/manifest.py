"""A batch's manifest: exactly which subjects an approval lets the desk send to Heap.

The manifest is the count of the subjects to send and the SHA-256 of their fingerprints, sorted
and joined by line feeds (UTF-8, no trailing line feed). The approver sees and approves it; the
submission job recomputes it from the rows it is about to plan and sends only when the two agree
(DESIGN.md, "Four-eyes on exactly what is sent").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, select

from webapp.models import RowClass, Subject, SubjectState


def manifest_sha256(fingerprints: Iterable[str]) -> str:
    """Hex SHA-256 of the sorted fingerprints, one per line."""
    return hashlib.sha256("\n".join(sorted(fingerprints)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """How many subjects would be sent, and the SHA-256 of their sorted fingerprints."""

    count: int
    sha256: str

    @classmethod
    def of(cls, fingerprints: Iterable[str]) -> Manifest:
        listed = list(fingerprints)
        return cls(count=len(listed), sha256=manifest_sha256(listed))


def to_send(session: Session, batch_id: int) -> Manifest:
    """The manifest of what planning the batch now would send: its valid subjects not yet sent."""
    fingerprints = session.exec(
        select(Subject.fingerprint).where(
            Subject.batch_id == batch_id,
            Subject.classification == RowClass.VALID.value,
            Subject.state == SubjectState.PENDING.value,
            Subject.heap_request_id.is_(None),
        )
    ).all()
    # A valid row always has a fingerprint; an empty string keeps a damaged row in the count.
    return Manifest.of(fingerprint or "" for fingerprint in fingerprints)
