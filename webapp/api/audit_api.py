"""The audit trail over the API: list, verify, export, and its transparency log (heads, proofs)."""

from __future__ import annotations

from datetime import datetime

from flask import Response, current_app, jsonify, request
from sqlmodel import select

from webapp.accounts.access import role_required
from webapp.api.blueprint import api
from webapp.api.common import whole_number
from webapp.api.openapi import op, query
from webapp.db import get_session, session_scope
from webapp.errors import api_error
from webapp.evidence import checkpoints, signing, tree_heads, witness
from webapp.models import AuditEntry, Role
from webapp.trail import audit, exports, tree

MAX_LIMIT = 1000
# Entry numbers are bigints in the tree; far more than any desk will write.
MAX_TREE_SIZE = 2**53


def _filters() -> dict:
    """Query-string filters: actor, action, target_type, target_id, since, until (ISO 8601)."""
    filters = {
        key: request.args.get(key) or None
        for key in ("actor", "action", "target_type", "target_id")
    }
    for key in ("since", "until"):
        raw = request.args.get(key)
        if raw:
            try:
                moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"'{key}' must be an ISO 8601 time with a zone, e.g. 2026-01-31T00:00:00Z"
                ) from None
            if moment.tzinfo is None:
                raise ValueError(f"'{key}' needs a time zone, e.g. 2026-01-31T00:00:00Z")
            filters[key] = moment
    return filters


@api.get("/audit")
@role_required(Role.AUDITOR)
def audit_list():
    """Entries in seq order: `after` (seq) and `limit` (≤ 1000) page through them."""
    try:
        filters = _filters()
        after = whole_number("after", 0)
        limit = min(whole_number("limit", 100, minimum=1), MAX_LIMIT)
    except ValueError as error:  # BadInput included
        return api_error(400, f"Bad query: {error}")
    query = audit.filtered(select(AuditEntry), **filters).where(AuditEntry.seq > after)
    rows = get_session().exec(query.order_by(AuditEntry.seq).limit(limit)).all()
    entries = [audit.entry_dict(row) for row in rows]
    next_after = entries[-1]["seq"] if len(entries) == limit else None
    return jsonify(entries=entries, next_after=next_after)


@api.get("/audit/verify")
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


@api.get("/audit/sth")
@role_required(Role.AUDITOR)
def audit_sth():
    """The latest signed tree head, or the one issued at `size`."""
    try:
        size = whole_number("size", None, minimum=1, maximum=MAX_TREE_SIZE)
    except ValueError as error:
        return api_error(400, f"Bad query: {error}")
    session = get_session()
    if size is None:
        head = tree_heads.latest(session)
        if head is None:
            return api_error(
                404, "No tree head has been signed yet: the trail is empty.", "not_found"
            )
    else:
        head = tree_heads.at_size(session, size)
        if head is None:
            return api_error(404, f"No tree head was signed at size {size}.", "not_found")
    return jsonify(tree_heads.sth_dict(head))


@api.get("/audit/inclusion")
@role_required(Role.AUDITOR)
def audit_inclusion():
    """The proof that entry `seq` is in the tree of `size` entries (RFC 9162 PATH)."""
    try:
        seq = whole_number("seq", None, minimum=1, maximum=MAX_TREE_SIZE)
        size = whole_number("size", None, minimum=1, maximum=MAX_TREE_SIZE)
        if seq is None or size is None:
            raise ValueError("'seq' and 'size' are both needed.")
    except ValueError as error:
        return api_error(400, f"Bad query: {error}")
    try:
        return jsonify(tree.inclusion(get_session(), seq, size))
    except tree.ProofError as error:
        return api_error(404, str(error), "not_found")


@api.get("/audit/consistency")
@role_required(Role.AUDITOR)
def audit_consistency():
    """The proof that the tree of `first` entries is a prefix of the tree of `second`."""
    try:
        first = whole_number("first", None, minimum=1, maximum=MAX_TREE_SIZE)
        second = whole_number("second", None, minimum=1, maximum=MAX_TREE_SIZE)
        if first is None or second is None:
            raise ValueError("'first' and 'second' are both needed.")
        if first > second:
            raise ValueError("'first' must not be larger than 'second'.")
    except ValueError as error:
        return api_error(400, f"Bad query: {error}")
    try:
        return jsonify(tree.consistency(get_session(), first, second))
    except tree.ProofError as error:
        return api_error(404, str(error), "not_found")


@api.get("/audit/witness.py")
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


@api.get("/audit/export.jsonl")
@role_required(Role.AUDITOR)
def audit_export_jsonl():
    """The trail as JSON Lines, streamed."""
    try:
        filters = _filters()
    except ValueError as error:
        return api_error(400, f"Bad query: {error}")
    app = current_app._get_current_object()
    return exports.download(
        exports.audit_jsonl(app, **filters), filename="audit.jsonl", mimetype="application/x-ndjson"
    )


@api.get("/audit/export.csv")
@role_required(Role.AUDITOR)
def audit_export_csv():
    """The trail as CSV, streamed."""
    try:
        filters = _filters()
    except ValueError as error:
        return api_error(400, f"Bad query: {error}")
    app = current_app._get_current_object()
    return exports.download(
        exports.audit_csv(app, **filters), filename="audit.csv", mimetype="text/csv"
    )


FILTER_PARAMS = [
    query("actor", "Only entries by this actor"),
    query("action", "Only this action, e.g. batch.approved"),
    query("target_type", "Only this kind of target"),
    query("target_id", "Only this target"),
    query("since", "From this time (ISO 8601 with zone)"),
    query("until", "Before this time (ISO 8601 with zone)"),
]
PATHS = {
    "/audit": {
        "get": op(
            "Audit entries in seq order",
            "auditor",
            params=FILTER_PARAMS
            + [
                query("after", "Entries after this seq", {"type": "integer"}),
                query("limit", "At most this many (≤ 1000)", {"type": "integer"}),
            ],
        )
    },
    "/audit/verify": {"get": op("Recompute the hash chain", "auditor")},
    "/audit/sth": {
        "get": op(
            "The latest signed tree head (or the one at `size`)",
            "auditor",
            params=[query("size", "The tree size of an earlier head", {"type": "integer"})],
        )
    },
    "/audit/inclusion": {
        "get": op(
            "Inclusion proof of one entry in a tree of a given size",
            "auditor",
            params=[
                query("seq", "The entry's seq", {"type": "integer"}, required=True),
                query(
                    "size",
                    "The tree size (that of a signed head)",
                    {"type": "integer"},
                    required=True,
                ),
            ],
        )
    },
    "/audit/consistency": {
        "get": op(
            "Consistency proof between two tree sizes",
            "auditor",
            params=[
                query("first", "The earlier tree size", {"type": "integer"}, required=True),
                query("second", "The later tree size", {"type": "integer"}, required=True),
            ],
        )
    },
    "/audit/witness.py": {
        "get": op(
            "The standalone witness script (Python standard library only) with the desk's "
            "public key pinned in it; 503 when no signing key is configured",
            "auditor",
            responses={"200": {"description": "witness.py", "content": {"text/x-python": {}}}},
        )
    },
    "/audit/export.jsonl": {"get": op("The trail as JSON Lines", "auditor", params=FILTER_PARAMS)},
    "/audit/export.csv": {"get": op("The trail as CSV", "auditor", params=FILTER_PARAMS)},
}
