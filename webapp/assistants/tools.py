"""The tools DESIGN.md names, who may use each, and the list a caller is shown.

A caller sees only the tools their role and token allow, and only those an environment's tool
policy offers: drafting a deletion needs a Main Production environment whose policy allows
deletion; the correction tools need an environment that allows one of the correction
operations, and their `operation` argument lists only those. Descriptions come from the
policies, so what an admin writes there is what the assistant reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
from pydantic import BaseModel
from sqlmodel import Session, select

from webapp import tool_policy
from webapp.accounts.access import Principal
from webapp.assistants import arguments, reading, writing
from webapp.assistants.callers import Access, refusal
from webapp.models import Environment, Role

READER = Access()
WRITER = Access(role=Role.OFFICER, writes=True)
# A preview sends and stores nothing, but the REST API offers it to officers only (as a
# POST, with the write scope): the bodies it shows are what would be written to Heap.
CORRECTION_OPERATIONS = tuple(tool_policy.FAMILY_OPERATION.values())


@dataclass(frozen=True)
class Tool:
    """One tool: its arguments, who may call it, what policy must offer it, what it does."""

    name: str
    summary: str
    arguments: type[BaseModel]
    run: Callable[[Principal, Any], dict[str, Any]]
    access: Access = READER
    gate: str | None = None  # "deletion" or "corrections": listed only when a policy offers it
    hints: types.ToolAnnotations = field(
        default_factory=lambda: types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
    )


TOOLS = {
    tool.name: tool
    for tool in (
        Tool(
            "lookup_subject",
            "Was this person deleted? Every batch and state that held them in one environment, "
            "found by fingerprint (works after the identifiers are purged). The search itself "
            "is audited.",
            arguments.LookupArguments,
            reading.lookup_subject,
        ),
        Tool(
            "list_batches",
            "The newest deletion batches (up to 50), optionally of one state, with counts and "
            "progress.",
            arguments.ListBatchesArguments,
            reading.list_batches,
        ),
        Tool(
            "batch_status",
            "One deletion batch: state, counts, the manifest an approval covers, who uploaded "
            "and approved it, deadlines, and its Heap requests with their deletion_request_ids.",
            arguments.BatchArguments,
            reading.batch_status,
        ),
        Tool(
            "deadlines_at_risk",
            "Deletions overdue or due within 7 days (GDPR Art. 12(3): one month from receipt, "
            "extendable), earliest first.",
            arguments.NoArguments,
            reading.deadlines_at_risk,
        ),
        Tool(
            "verify_audit",
            "Recompute the audit trail's hash chain and check its signed checkpoints and tree "
            "heads: ok, entries, head, the first bad seq.",
            arguments.NoArguments,
            reading.verify_audit,
        ),
        Tool(
            "draft_deletion_batch",
            "Draft a deletion batch from identities and/or user_ids, uploaded as you. It awaits "
            "a second person's approval in the desk; no tool approves, and nothing is sent to "
            "Heap before that approval. Answers the batch id, counts and any row problems.",
            arguments.DraftArguments,
            writing.draft_deletion_batch,
            access=WRITER,
            gate="deletion",
            hints=types.ToolAnnotations(
                read_only_hint=False, destructive_hint=False, open_world_hint=False
            ),
        ),
        Tool(
            "preview_correction",
            "Check a Heap write through the environment's policy and Heap's rules and show "
            "exactly the calls it would make, the warnings, the re-ingestion guard and whether "
            "it needs a second officer's approval. Sends and stores nothing.",
            arguments.PreviewArguments,
            writing.preview_correction,
            access=WRITER,
            gate="corrections",
        ),
        Tool(
            "request_correction",
            "Make a Heap write as you, through the environment's policy: refused when the "
            "policy disables the operation or forbids a property; above the policy's four-eyes "
            "limit it waits for a second officer's approval and nothing is sent.",
            arguments.CorrectionArguments,
            writing.request_correction,
            access=WRITER,
            gate="corrections",
            hints=types.ToolAnnotations(
                read_only_hint=False, destructive_hint=True, open_world_hint=True
            ),
        ),
    )
}


@dataclass
class Offer:
    """What the environments' policies offer: for each operation, (environment, description)."""

    by_operation: dict[str, list[tuple[Environment, str]]]

    def offers(self, gate: str | None) -> bool:
        if gate is None:
            return True
        if gate == "deletion":
            return bool(self.by_operation.get("deletion"))
        return any(self.by_operation.get(op) for op in CORRECTION_OPERATIONS)


def current_offer(session: Session) -> Offer:
    """Read every environment's policy once."""
    by_operation: dict[str, list[tuple[Environment, str]]] = {}
    for env in session.exec(select(Environment).order_by(Environment.id)).all():
        policy = tool_policy.policy_of(session, env)
        for operation in tool_policy.OPERATIONS:
            # Heap's deletion API takes Main Production's credentials only (heap-api.md).
            if policy.allows(operation) and (operation != "deletion" or env.main_production):
                by_operation.setdefault(operation, []).append((env, policy.description(operation)))
    return Offer(by_operation)


def gate_refusal(tool: Tool, offer: Offer) -> str | None:
    """Why no environment offers what `tool` does, or None."""
    if offer.offers(tool.gate):
        return None
    if tool.gate == "deletion":
        return (
            "No environment's tool policy offers deletion (on Main Production): an admin can "
            "switch it on under Environments → Tool policy."
        )
    return (
        "No environment's tool policy offers a correction operation: an admin can switch one "
        "on under Environments → Tool policy."
    )


def _where(pairs: list[tuple[Environment, str]]) -> dict[str, list[str]]:
    """Environments grouped by the description their policy gives (most share the default)."""
    grouped: dict[str, list[str]] = {}
    for env, text in pairs:
        grouped.setdefault(text, []).append(f"“{env.name}” (environment_id {env.id})")
    return grouped


def description(tool: Tool, offer: Offer) -> str:
    """The tool's own summary, then what the policies say of its operations."""
    lines = [tool.summary]
    if tool.gate == "deletion":
        for text, envs in _where(offer.by_operation["deletion"]).items():
            lines.append(f"Deletion in {', '.join(envs)}: {text}")
    elif tool.gate == "corrections":
        for operation in CORRECTION_OPERATIONS:
            for text, envs in _where(offer.by_operation.get(operation, [])).items():
                lines.append(f"operation “{operation}” in {', '.join(envs)}: {text}")
    return "\n".join(lines)


def input_schema(tool: Tool, offer: Offer) -> dict[str, Any]:
    schema = tool.arguments.model_json_schema()
    if tool.gate == "corrections":
        offered = [op for op in CORRECTION_OPERATIONS if offer.by_operation.get(op)]
        schema["properties"]["operation"]["enum"] = offered
    return schema


def listed(caller: Principal, offer: Offer) -> list[types.Tool]:
    """The tools this caller may use and some environment's policy offers."""
    return [
        types.Tool(
            name=tool.name,
            description=description(tool, offer),
            input_schema=input_schema(tool, offer),
            annotations=tool.hints,
        )
        for tool in TOOLS.values()
        if refusal(caller, tool.name, tool.access) is None and offer.offers(tool.gate)
    ]
