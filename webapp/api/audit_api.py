"""The audit trail over the API: list, verify, export."""

from __future__ import annotations

from datetime import datetime

from flask import current_app, jsonify, request
from sqlmodel import select

from webapp.accounts.access import role_required
from webapp.api.blueprint import api
from webapp.api.common import whole_number
from webapp.api.openapi import op, query
from webapp.db import get_session, session_scope
from webapp.errors import api_error
from webapp.evidence import checkpoints
from webapp.models import AuditEntry, Role
from webapp.trail import audit, exports

MAX_LIMIT = 1000


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
    body = result.as_dict()
    body["ok"] = result.ok and signed.ok
    body["checkpoints"] = {
        "count": signed.checkpoints,
        "key_id": signed.trusted_key_id,
        "ok": signed.ok,
        "problems": signed.problems,
    }
    return jsonify(body)


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
    "/audit/export.jsonl": {"get": op("The trail as JSON Lines", "auditor", params=FILTER_PARAMS)},
    "/audit/export.csv": {"get": op("The trail as CSV", "auditor", params=FILTER_PARAMS)},
}
