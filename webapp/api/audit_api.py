"""The audit trail over the API: list, verify, export, and its transparency log (heads, proofs).

Each route takes its query as a model (validated by flask-openapi3, written into the document).
`validate_request()` sits under `role_required`: the role is checked before the query, as before
the models, so a caller without the role gets 401/403 whatever the query says.
"""

from __future__ import annotations

from typing import Annotated, Any

from flask import Response, current_app, jsonify
from flask_openapi3 import validate_request
from pydantic import BaseModel, Field, WithJsonSchema, model_validator
from pydantic.json_schema import SkipJsonSchema
from sqlmodel import select

from webapp.accounts.access import role_required
from webapp.api.blueprint import api
from webapp.api.schemas import STORABLE, ErrorBody, aware_datetime, blank_or, whole
from webapp.db import get_session, session_scope
from webapp.errors import api_error
from webapp.evidence import checkpoints, signing, tree_heads, witness
from webapp.models import AuditEntry, Role
from webapp.trail import audit, exports, tree

MAX_LIMIT = 1000
# Entry numbers are bigints in the tree; far more than any desk will write.
MAX_TREE_SIZE = 2**53
ROLE = "Role: auditor, officer or admin (any token)."
HEX64 = r"^[0-9a-f]{64}$"


# --- request models -------------------------------------------------------------------------


def present(data: Any) -> Any:
    """An empty query argument (`?limit=`) counts as absent, as it always has."""
    if isinstance(data, dict):
        return {key: value for key, value in data.items() if value != ""}
    return data


class Query(BaseModel):
    """A query string: empty arguments are absent, unknown ones ignored."""

    @model_validator(mode="before")
    @classmethod
    def _drop_empty(cls, data: Any) -> Any:
        return present(data)


# Text without NUL (refused before any view): the pattern tells a client or fuzzer so.
Text = Annotated[str, Field(pattern=STORABLE)]


def query_time(name: str):
    """A date-time query argument; sent empty, it is absent (Query drops it), as documented."""
    schema = blank_or({"type": "string", "format": "date-time"})
    return Annotated[aware_datetime(name), WithJsonSchema(schema)]


def text_filter(description: str):
    return Field(None, description=description)


class AuditFilters(Query):
    actor: Text | SkipJsonSchema[None] = text_filter("Only entries by this actor (an e-mail)")
    action: Text | SkipJsonSchema[None] = text_filter("Only this action, e.g. batch.approved")
    target_type: Text | SkipJsonSchema[None] = text_filter("Only this kind of target, e.g. batch")
    target_id: Text | SkipJsonSchema[None] = text_filter("Only this target's id")
    since: query_time("since") | SkipJsonSchema[None] = Field(
        None, description="From this time on: ISO 8601 with a zone, e.g. 2026-01-31T00:00:00Z"
    )
    until: query_time("until") | SkipJsonSchema[None] = Field(
        None, description="Before this time: ISO 8601 with a zone, e.g. 2026-02-28T00:00:00Z"
    )

    def as_filters(self) -> dict:
        return self.model_dump()


class AuditListQuery(AuditFilters):
    after: whole("after", 0) = Field(0, description="Entries after this seq")
    limit: whole("limit", 1) = Field(
        100, description=f"At most this many entries (more than {MAX_LIMIT} count as {MAX_LIMIT})"
    )

    def as_filters(self) -> dict:
        return self.model_dump(exclude={"after", "limit"})


class SthQuery(Query):
    size: whole("size", 1, MAX_TREE_SIZE) | SkipJsonSchema[None] = Field(
        None, description="The tree size of an earlier head (default: the latest head)"
    )


def both(data: Any, first: str, second: str) -> Any:
    """Both arguments, or the desk's message naming them (not pydantic's 'Send ...')."""
    data = present(data)
    if isinstance(data, dict) and (first not in data or second not in data):
        raise ValueError(f"'{first}' and '{second}' are both needed.")
    return data


class InclusionQuery(BaseModel):
    seq: whole("seq", 1, MAX_TREE_SIZE) = Field(description="The entry's seq")
    size: whole("size", 1, MAX_TREE_SIZE) = Field(
        description="The tree size (that of a signed head)"
    )

    @model_validator(mode="before")
    @classmethod
    def _both(cls, data: Any) -> Any:
        return both(data, "seq", "size")


class ConsistencyQuery(BaseModel):
    first: whole("first", 1, MAX_TREE_SIZE) = Field(description="The earlier tree size")
    second: whole("second", 1, MAX_TREE_SIZE) = Field(
        description="The later tree size (not smaller than `first`)"
    )

    @model_validator(mode="before")
    @classmethod
    def _both(cls, data: Any) -> Any:
        return both(data, "first", "second")


# --- answer models --------------------------------------------------------------------------


class Entry(BaseModel):
    """An audit entry, in DESIGN.md's export format."""

    seq: int = Field(ge=1)
    at: str = Field(description="UTC ISO 8601, the exact text that was hashed")
    actor: str
    action: str
    target_type: str
    target_id: str
    details: dict[str, Any]
    prev_hash: str = Field(pattern=HEX64)
    hash: str = Field(pattern=HEX64)


class EntryPage(BaseModel):
    entries: list[Entry]
    next_after: int | None = Field(description="Pass as `after` for the next page; null at the end")


class SignedPart(BaseModel):
    count: int
    key_id: str | None = Field(description="The key the signatures are checked with")
    ok: bool
    problems: list[str]


class Verification(BaseModel):
    ok: bool = Field(description="The chain, the checkpoints and the tree heads all check out")
    entries: int
    head: str = Field(description="The hash of the last entry")
    first_bad_seq: int | None
    problem: str | None
    checkpoints: SignedPart
    tree_heads: SignedPart


class SignedTreeHead(BaseModel):
    """A signed tree head (DESIGN.md, "Transparency log")."""

    model_config = {"title": "STH"}
    tree_size: int
    root_hash: str = Field(pattern=HEX64)
    timestamp: str = Field(description="UTC ISO 8601, the exact text that was signed")
    key_id: str = Field(pattern=HEX64)
    signature: str = Field(description="Base64 Ed25519 signature")
    tsa_token: str | SkipJsonSchema[None] = Field(
        None, description="Base64 DER RFC 3161 TimeStampToken (only with DESK_TSA_URL)"
    )


class InclusionProof(BaseModel):
    seq: int
    leaf_index: int
    tree_size: int
    leaf_hash: str = Field(pattern=HEX64)
    path: list[str]


class ConsistencyProof(BaseModel):
    first: int
    second: int
    path: list[str]


def download(media_type: str, description: str, binary: bool = False) -> dict:
    """A file answer (not JSON), for the document."""
    schema = {"type": "string", "format": "binary"} if binary else {"type": "string"}
    return {
        "description": description,
        "content": {media_type: {"schema": schema}},
        "headers": {
            "Content-Disposition": {
                "description": "attachment; filename=…",
                "schema": {"type": "string"},
            }
        },
    }


# --- routes ---------------------------------------------------------------------------------


@api.get(
    "/audit",
    operation_id="list_audit_entries",
    summary="Audit entries in seq order",
    description="`after` (a seq) and `limit` page through them; the filters combine. " + ROLE,
    responses={200: EntryPage},
)
@role_required(Role.AUDITOR)
@validate_request()
def audit_list(query: AuditListQuery):
    """Entries in seq order: `after` (seq) and `limit` (≤ 1000) page through them."""
    limit = min(query.limit, MAX_LIMIT)
    found = audit.filtered(select(AuditEntry), **query.as_filters())
    found = found.where(AuditEntry.seq > query.after).order_by(AuditEntry.seq).limit(limit)
    rows = get_session().exec(found).all()
    entries = [audit.entry_dict(row) for row in rows]
    next_after = entries[-1]["seq"] if len(entries) == limit else None
    return jsonify(entries=entries, next_after=next_after)


@api.get(
    "/audit/verify",
    operation_id="verify_audit",
    summary="Recompute the hash chain and check the signed checkpoints and tree heads",
    description="`ok` is false, with the first bad `seq` and the problems, when anything was "
    "altered, inserted or removed. " + ROLE,
    responses={200: Verification},
)
@role_required(Role.AUDITOR)
def audit_verify():
    """Recompute the chain and check the signed checkpoints: ok, entries, head, first bad seq."""
    with session_scope(write=False) as session:
        result = audit.verify(session)
        signed = checkpoints.verify_checkpoints(session)
        heads = tree_heads.verify_heads(session)
    body = result.as_dict()
    body["ok"] = result.ok and signed.ok and heads.ok
    body["checkpoints"] = {
        "count": signed.checkpoints,
        "key_id": signed.trusted_key_id,
        "ok": signed.ok,
        "problems": signed.problems,
    }
    body["tree_heads"] = {
        "count": heads.heads,
        "key_id": heads.trusted_key_id,
        "ok": heads.ok,
        "problems": heads.problems,
    }
    return jsonify(body)


@api.get(
    "/audit/sth",
    operation_id="get_signed_tree_head",
    summary="The latest signed tree head, or the one at `size`",
    description="404 when no head has been signed yet, or none at that size. " + ROLE,
    responses={200: SignedTreeHead, 404: ErrorBody},
)
@role_required(Role.AUDITOR)
@validate_request()
def audit_sth(query: SthQuery):
    """The latest signed tree head, or the one issued at `size`."""
    session = get_session()
    if query.size is None:
        head = tree_heads.latest(session)
        if head is None:
            return api_error(
                404, "No tree head has been signed yet: the trail is empty.", "not_found"
            )
    else:
        head = tree_heads.at_size(session, query.size)
        if head is None:
            return api_error(404, f"No tree head was signed at size {query.size}.", "not_found")
    return jsonify(tree_heads.sth_dict(head))


@api.get(
    "/audit/inclusion",
    operation_id="get_inclusion_proof",
    summary="The proof that entry `seq` is in the tree of `size` entries (RFC 9162)",
    description="404 when there is no tree of that size or the entry is not in it. " + ROLE,
    responses={200: InclusionProof, 404: ErrorBody},
)
@role_required(Role.AUDITOR)
@validate_request()
def audit_inclusion(query: InclusionQuery):
    """The proof that entry `seq` is in the tree of `size` entries (RFC 9162 PATH)."""
    try:
        return jsonify(tree.inclusion(get_session(), query.seq, query.size))
    except tree.ProofError as error:
        return api_error(404, str(error), "not_found")


@api.get(
    "/audit/consistency",
    operation_id="get_consistency_proof",
    summary="The proof that the tree of `first` entries is a prefix of the tree of `second`",
    description="404 when there is no tree of size `second`, or `first` is larger than `second` "
    "(no tree is a prefix of a smaller one: RFC 9162 defines no such proof). " + ROLE,
    responses={200: ConsistencyProof, 404: ErrorBody},
)
@role_required(Role.AUDITOR)
@validate_request()
def audit_consistency(query: ConsistencyQuery):
    """The proof that the tree of `first` entries is a prefix of the tree of `second`."""
    if query.first > query.second:
        # Both sizes are fine on their own; the proof asked for does not exist.
        return api_error(404, "'first' must not be larger than 'second'.", "not_found")
    try:
        return jsonify(tree.consistency(get_session(), query.first, query.second))
    except tree.ProofError as error:
        return api_error(404, str(error), "not_found")


@api.get(
    "/audit/witness.py",
    operation_id="get_witness_script",
    summary="The standalone witness script, with the desk's public key pinned in it",
    description="Python standard library only. 503 (no_signing_key) when no signing key is "
    "configured. " + ROLE,
    responses={200: download("text/x-python", "witness.py"), 503: ErrorBody},
)
@role_required(Role.AUDITOR)
def audit_witness_script():
    """The standalone witness (Python standard library only), with the desk's key pinned in it."""
    try:
        text = witness.script_text()
    except signing.SigningKeyError as error:
        return api_error(503, str(error), "no_signing_key")
    response = Response(text, mimetype="text/x-python")
    response.headers["Content-Disposition"] = 'attachment; filename="witness.py"'
    return response


@api.get(
    "/audit/export.jsonl",
    operation_id="export_audit_jsonl",
    summary="The trail as JSON Lines (one entry per line), streamed",
    description="Entries in DESIGN.md's format, so any tool can recompute the chain. " + ROLE,
    responses={200: download("application/x-ndjson", "audit.jsonl")},
)
@role_required(Role.AUDITOR)
@validate_request()
def audit_export_jsonl(query: AuditFilters):
    """The trail as JSON Lines, streamed."""
    app = current_app._get_current_object()
    return exports.download(
        exports.audit_jsonl(app, **query.as_filters()),
        filename="audit.jsonl",
        mimetype="application/x-ndjson",
    )


@api.get(
    "/audit/export.csv",
    operation_id="export_audit_csv",
    summary="The trail as CSV, streamed",
    description=ROLE,
    responses={200: download("text/csv", "audit.csv")},
)
@role_required(Role.AUDITOR)
@validate_request()
def audit_export_csv(query: AuditFilters):
    """The trail as CSV, streamed."""
    app = current_app._get_current_object()
    return exports.download(
        exports.audit_csv(app, **query.as_filters()), filename="audit.csv", mimetype="text/csv"
    )
