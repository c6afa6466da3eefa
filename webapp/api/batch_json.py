"""How batches look in the API's JSON, and service refusals as API errors."""

from __future__ import annotations

from webapp.erasure import batches as service
from webapp.erasure import queries as batch_queries
from webapp.errors import api_error
from webapp.models import Batch


def fail(error: service.BatchError):
    """A service refusal as the API's error body, with its status."""
    return api_error(error.status, str(error), error.code)


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def counts(batch: Batch) -> dict:
    return {
        "rows": batch.rows_total,
        "valid": batch.valid_count,
        "malformed": batch.malformed_count,
        "duplicate": batch.duplicate_count,
        "already_requested": batch.already_requested_count,
        "excluded": batch.excluded_count,
    }


def summary(batch: Batch, complete: int, environment: str | None = None) -> dict:
    """A batch as lists show it."""
    return {
        "id": batch.id,
        "environment_id": batch.environment_id,
        "environment": environment,
        "state": batch.state,
        "source": batch.source,
        "filename": batch.filename,
        "reference": batch.reference,
        "sha256": batch.file_sha256,
        "received_on": _iso(batch.received_on),
        "counts": counts(batch),
        # What approval covers (DESIGN.md, "Four-eyes on exactly what is sent").
        "manifest": {"count": batch.manifest_count, "sha256": batch.manifest_sha256},
        "progress": {"complete": complete, "total": batch.valid_count},
        "created_at": _iso(batch.created_at),
        "approved_at": _iso(batch.approved_at),
        "submitted_at": _iso(batch.submitted_at),
        "completed_at": _iso(batch.completed_at),
        "next_attempt_at": _iso(batch.next_attempt_at),
        "last_error": batch.last_error,
    }


def detail_json(detail: batch_queries.BatchDetail) -> dict:
    """GET /batches/{id}: state, counts, progress, people, deadlines, Heap requests."""
    batch = detail.batch
    body = summary(batch, detail.complete, detail.environment.name)
    body.update(
        people=detail.people,
        rejection_reason=batch.rejection_reason,
        approved_manifest_sha256=batch.approved_manifest_sha256,
        reapproval_reason=batch.reapproval_reason,
        cancelled_at=_iso(batch.cancelled_at),
        cancel_reason=batch.cancel_reason,
        subject_states=detail.subject_states,
        deadlines=detail.deadlines,
        heap_requests=[
            {
                "id": view.request.id,
                "chunk_index": view.request.chunk_index,
                "subjects": view.request.subject_count,
                "state": view.request.state,
                "deletion_request_ids": [d.deletion_request_id for d in view.deletion_ids]
                or ([view.request.deletion_request_id] if view.request.deletion_request_id else []),
                "status": view.request.heap_status,
                "stale": view.request.stale,
                "attempts": view.request.attempts,
                "last_polled_at": _iso(view.request.last_polled_at),
                "next_attempt_at": _iso(view.request.next_attempt_at),
                "last_error": view.request.last_error,
                "completed_at": _iso(view.request.completed_at),
            }
            for view in detail.requests
        ],
    )
    return body
