"""The tools that change the desk: drafting a deletion batch, previewing and requesting a
correction. Each goes through the same service as the REST API, so the environment's tool
policy, four-eyes and the re-ingestion guard apply unchanged; nothing here approves.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from webapp import tool_policy
from webapp.accounts.access import Principal
from webapp.assistants.arguments import CorrectionArguments, DraftArguments, PreviewArguments
from webapp.assistants.reading import ToolRefused, batch_counts
from webapp.corrections import service as corrections
from webapp.corrections.plans import CorrectionInputError
from webapp.db import session_scope
from webapp.erasure import batches
from webapp.models import CorrectionState, Environment

MAX_PROBLEMS = 100
# The correction families of the services, by the policy's operation names the tools take.
FAMILY_OF = {operation: family for family, operation in tool_policy.FAMILY_OPERATION.items()}
APPROVAL_NOTE = (
    "Nothing is sent to Heap until a second officer or admin — not the uploader — approves "
    "this batch in the desk (Batches → #{id}). No assistant can approve."
)


def _upload(args: DraftArguments) -> bytes:
    """The people as the CSV an officer would upload: identities first, then user_ids."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["identity", "user_id"])
    writer.writerows([identity, ""] for identity in args.identities)
    writer.writerows(["", user_id] for user_id in args.user_ids)
    return text.getvalue().encode("utf-8")


def _item(args: DraftArguments, row: int) -> str:
    """Which argument a row of the upload came from (rows count from 1)."""
    if row <= len(args.identities):
        return f"identities[{row - 1}]"
    return f"user_ids[{row - 1 - len(args.identities)}]"


def draft_deletion_batch(caller: Principal, args: DraftArguments) -> dict[str, Any]:
    """Create a batch awaiting a second person's approval, uploaded by the caller."""
    with session_scope(write=True) as session:
        try:
            batch, upload = batches.create_batch(
                session,
                actor=caller.email,
                source="mcp",
                environment_id=args.environment_id,
                reference=args.reference,
                data=_upload(args),
            )
        except batches.BatchError as error:
            raise ToolRefused(str(error)) from None
        problems = [row for row in upload.rows if row.problem]
        answer = {
            "batch_id": batch.id,
            "state": batch.state,
            "environment_id": batch.environment_id,
            "uploaded_by": caller.email,
            "counts": batch_counts(batch),
            "manifest": {"count": batch.manifest_count, "sha256": batch.manifest_sha256},
            # Reasons never quote the value (erasure/rows.py); the item says which one it was.
            "problems": [
                {
                    "item": _item(args, row.number),
                    "classification": row.classification,
                    "reason": row.problem,
                }
                for row in problems[:MAX_PROBLEMS]
            ],
            "problems_total": len(problems),
            "approval": APPROVAL_NOTE.format(id=batch.id),
        }
    return answer


def _family(operation: str) -> str:
    return FAMILY_OF[operation]


def _preview_answer(seen: corrections.Preview) -> dict[str, Any]:
    return {
        "environment_id": seen.environment.id,
        "operation": seen.plan.operation.value,
        "items": seen.plan.items,
        "calls": [
            {"operation": c.operation, "method": c.method, "url": c.url, "body": c.json_body}
            for c in seen.plan.calls
        ],
        "warnings": [
            {"code": n.code, "message": n.message, "needs_confirmation": n.confirm}
            for n in seen.plan.notices
        ],
        "guard": {"refused": bool(seen.hits), "message": seen.guard_message},
        "needs_approval": seen.needs_approval,
    }


def _check_environment(session, environment_id: int) -> None:
    if session.get(Environment, environment_id) is None:
        raise ToolRefused(f"There is no environment {environment_id}.")


def preview_correction(_caller: Principal, args: PreviewArguments) -> dict[str, Any]:
    """Validate a correction through the policy and say exactly what would be sent."""
    with session_scope(write=False) as session:
        _check_environment(session, args.environment_id)
        try:
            seen = corrections.preview(
                session,
                environment_id=args.environment_id,
                family=_family(args.operation),
                data=args.body,
            )
        except CorrectionInputError as error:
            raise ToolRefused(str(error)) from None
        return _preview_answer(seen)


def request_correction(caller: Principal, args: CorrectionArguments) -> dict[str, Any]:
    """Send a correction as the caller, or leave it awaiting a second officer (four-eyes)."""
    with session_scope(write=True) as session:
        _check_environment(session, args.environment_id)
        try:
            correction = corrections.send(
                session,
                actor=caller.email,
                environment_id=args.environment_id,
                family=_family(args.operation),
                data=args.body,
                override_reason=args.override_reason,
                confirm_warnings=args.confirm_warnings,
            )
        except CorrectionInputError as error:
            raise ToolRefused(str(error)) from None
        answer = {
            "correction_id": correction.id,
            "operation": correction.operation,
            "state": correction.state,
            "environment_id": correction.environment_id,
            "items": correction.item_count,
            "heap_status": correction.heap_status,
            "heap_message": correction.heap_message,
            "guarded_count": correction.guarded_count,
        }
    if answer["state"] == CorrectionState.AWAITING_APPROVAL.value:
        answer["approval"] = (
            "The environment's policy asks a second officer to approve a correction of this "
            "size: nothing was sent. It waits in the desk "
            f"(Corrections → #{answer['correction_id']})."
        )
    return answer
