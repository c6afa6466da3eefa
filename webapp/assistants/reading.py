"""The tools that only read: lookups, batches, deadlines and the audit trail's verification.

Each calls the domain function its REST endpoint calls and answers with what that endpoint
shows, less what an assistant does not need: no file names, no identifiers the caller did not
send (fingerprints stay in the desk), no Heap error texts outside a batch's own status.
"""

from __future__ import annotations

from typing import Any

from webapp.accounts.access import Principal
from webapp.assistants.arguments import BatchArguments, ListBatchesArguments, LookupArguments
from webapp.db import session_scope
from webapp.erasure import batches, deadlines, lookup, queries
from webapp.evidence import checkpoints, tree_heads
from webapp.models import Batch, Environment
from webapp.trail import audit

LIST_LIMIT = 50
AT_RISK_LIMIT = 50


class ToolRefused(Exception):
    """The desk refuses the call; the message is for the caller."""


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def batch_counts(batch: Batch) -> dict[str, int]:
    """A batch's counts as the REST API gives them (excluded rows included)."""
    return {
        "rows": batch.rows_total,
        "valid": batch.valid_count,
        "malformed": batch.malformed_count,
        "duplicate": batch.duplicate_count,
        "already_requested": batch.already_requested_count,
        "excluded": batch.excluded_count,
    }


def batch_summary(batch: Batch, environment: str | None, complete: int) -> dict[str, Any]:
    """A batch as lists show it (ids, state, counts, progress; no file name)."""
    return {
        "batch_id": batch.id,
        "environment_id": batch.environment_id,
        "environment": environment,
        "state": batch.state,
        "source": batch.source,
        "reference": batch.reference,
        "counts": batch_counts(batch),
        "progress": {"complete": complete, "total": batch.valid_count},
        "received_on": _iso(batch.received_on),
        "created_at": _iso(batch.created_at),
        "approved_at": _iso(batch.approved_at),
        "completed_at": _iso(batch.completed_at),
    }


def lookup_subject(caller: Principal, args: LookupArguments) -> dict[str, Any]:
    """Every batch and state that held the subject (the search is audited by fingerprint)."""
    kind = "identity" if args.identity is not None else "user_id"
    with session_scope(write=False) as session:
        if session.get(Environment, args.environment_id) is None:
            raise ToolRefused(f"There is no environment {args.environment_id}.")
        try:
            hits = lookup.lookup(
                session,
                kind=kind,
                value=args.identity if args.identity is not None else args.user_id,
                environment_id=args.environment_id,
                actor=caller.email,
            )
        except lookup.LookupRefused as error:
            raise ToolRefused(str(error)) from None
        results = [
            {
                "subject_id": hit.subject.id,
                "batch_id": hit.batch.id,
                "batch_state": hit.batch.state,
                "environment": hit.environment,
                "classification": hit.subject.classification,
                "state": hit.subject.state,
                "received_on": _iso(hit.subject.received_on),
                "due_on": _iso(hit.subject.due_on),
                "extension_months": hit.subject.extension_months,
                "submitted_at": _iso(hit.subject.submitted_at),
                "completed_at": _iso(hit.subject.completed_at),
                "identifier_purged": hit.subject.purged_at is not None,
                "heap_deletion_request_ids": [d.deletion_request_id for d in hit.deletion_ids]
                or ([hit.heap_request.deletion_request_id] if hit.heap_request else []),
            }
            for hit in hits
        ]
    return {
        "looked_up": kind,
        "deleted": any(row["state"] == "complete" for row in results),
        "results": results,
    }


def list_batches(_caller: Principal, args: ListBatchesArguments) -> dict[str, Any]:
    """The newest batches (of one state, if given)."""
    with session_scope(write=False) as session:
        page = queries.list_batches(
            session,
            state=args.state.value if args.state else None,
            environment_id=None,
            page=1,
            per_page=LIST_LIMIT,
        )
        rows = [batch_summary(row.batch, row.environment, row.complete) for row in page.items]
    return {"batches": rows, "total": page.total, "shown": len(rows)}


def batch_status(_caller: Principal, args: BatchArguments) -> dict[str, Any]:
    """One batch: state, counts, manifest, people, deadlines and its Heap requests."""
    with session_scope(write=False) as session:
        try:
            detail = queries.batch_detail(session, args.batch_id)
        except batches.BatchError as error:
            raise ToolRefused(str(error)) from None
        batch = detail.batch
        answer = batch_summary(batch, detail.environment.name, detail.complete)
        answer.update(
            manifest={"count": batch.manifest_count, "sha256": batch.manifest_sha256},
            people=detail.people,
            subject_states=detail.subject_states,
            deadlines=detail.deadlines,
            rejection_reason=batch.rejection_reason,
            cancel_reason=batch.cancel_reason,
            next_attempt_at=_iso(batch.next_attempt_at),
            last_error=batch.last_error,
            heap_requests=[
                {
                    "chunk_index": view.request.chunk_index,
                    "subjects": view.request.subject_count,
                    "state": view.request.state,
                    "heap_status": view.request.heap_status,
                    "deletion_request_ids": [d.deletion_request_id for d in view.deletion_ids]
                    or (
                        [view.request.deletion_request_id]
                        if view.request.deletion_request_id
                        else []
                    ),
                    "stale": view.request.stale,
                    "attempts": view.request.attempts,
                    "completed_at": _iso(view.request.completed_at),
                }
                for view in detail.requests
            ],
        )
    return answer


def deadlines_at_risk(_caller: Principal, _args: Any) -> dict[str, Any]:
    """Overdue and due-within-7-days deletions, earliest first (GDPR Art. 12(3))."""
    today = deadlines.today_utc()
    with session_scope(write=False) as session:
        found = deadlines.at_risk(session, today=today, limit=AT_RISK_LIMIT)
        subjects = [
            {
                "subject_id": subject.id,
                "batch_id": subject.batch_id,
                "row": subject.row_number,
                "kind": subject.kind,
                "state": subject.state,
                "due_on": _iso(subject.due_on),
                "days_left": deadlines.days_left(subject.due_on, today),
                "urgency": deadlines.urgency(subject.due_on, today),
                "extension_months": subject.extension_months,
            }
            for subject in found.subjects
        ]
    return {
        "today": today.isoformat(),
        "overdue": found.overdue,
        "due_within_7_days": found.due_soon,
        "subjects": subjects,
        "more": max(0, found.overdue + found.due_soon - len(subjects)),
        "full_report": "resource desk://deadlines/report.csv",
    }


def verify_audit(_caller: Principal, _args: Any) -> dict[str, Any]:
    """Recompute the hash chain and check the signed checkpoints and tree heads."""
    with session_scope(write=False) as session:
        result = audit.verify(session)
        signed = checkpoints.verify_checkpoints(session)
        heads = tree_heads.verify_heads(session)
    body = result.as_dict()
    body["ok"] = result.ok and signed.ok and heads.ok
    body["checkpoints"] = {
        "count": signed.checkpoints,
        "ok": signed.ok,
        "problems": signed.problems,
    }
    body["tree_heads"] = {"count": heads.heads, "ok": heads.ok, "problems": heads.problems}
    return body
