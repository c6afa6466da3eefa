"""What the Heap client returns on success."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeletionAccepted:
    """Heap's 201 answer to a deletion request."""

    deletion_request_id: str
    location: str | None
    status: str


@dataclass(frozen=True)
class DeletionStatus:
    """A deletion request's status, passed through verbatim (Heap documents only two)."""

    deletion_request_id: str
    status: str


@dataclass(frozen=True)
class IngestionResult:
    """An accepted ingestion call: Heap's body varies (`{}`, `OK`, empty), the status decides."""

    operation: str
    status_code: int
    body: str
