"""The append-only, hash-chained audit trail: record, verify, export (format in DESIGN.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from .db import WRITE_OPTION
from .models import AuditEntry

GENESIS_HASH = "0" * 64
# Key of the transaction-scoped advisory lock that serialises appends on PostgreSQL.
AUDIT_LOCK_KEY = 0x6465736B  # "desk"
ENTRY_FIELDS = ("seq", "at", "actor", "action", "target_type", "target_id", "details", "prev_hash")

SYSTEM_ACTOR = "system"


class AuditError(RuntimeError):
    """The audit trail cannot be appended to as asked."""


def format_at(moment: datetime) -> str:
    """UTC ISO 8601 with microseconds and a Z, the exact text that is hashed."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept as is: DESIGN.md's serialisation."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(entry: dict) -> str:
    """Hex SHA-256 of the entry without its `hash`, serialised canonically."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def entry_dict(row: AuditEntry) -> dict:
    """The entry as the JSON object of the export format."""
    return {
        "seq": row.seq,
        "at": row.at,
        "actor": row.actor,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "details": json.loads(row.details),
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def _lock_chain(session: Session) -> None:
    """Serialise appends so two writers never read the same head (PITFALLS.md #5)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({AUDIT_LOCK_KEY})")
    elif not connection.get_execution_options().get(WRITE_OPTION):
        # A deferred SQLite transaction would fork the chain under concurrency; every use
        # case that audits must run in a write session (BEGIN IMMEDIATE).
        raise AuditError("audit.record needs a write session (new_session(write=True))")


def head(session: Session) -> AuditEntry | None:
    """The last entry of the chain, or None when it is empty."""
    return session.exec(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | int | None = None,
    details: dict | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction; the caller commits it with its change.

    Details must never carry a personal identifier, token or API key: pass fingerprints.
    """
    _lock_chain(session)
    last = head(session)
    entry = {
        "seq": (last.seq + 1) if last else 1,
        "at": format_at(at or datetime.now(UTC)),
        "actor": actor,
        "action": action,
        "target_type": target_type,
        "target_id": "" if target_id is None else str(target_id),
        "details": details or {},
        "prev_hash": last.hash if last else GENESIS_HASH,
    }
    entry["hash"] = entry_hash(entry)
    row = AuditEntry(**{**entry, "details": canonical_json(entry["details"])})
    session.add(row)
    session.flush()
    return row


@dataclass
class Verification:
    """The outcome of recomputing the chain."""

    ok: bool
    entries: int
    head: str
    first_bad_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


def verify_entries(entries: Iterable[dict]) -> Verification:
    """Recompute a chain of entry dicts; name the first altered, inserted or missing entry."""
    expected_seq, prev, count = 1, GENESIS_HASH, 0
    for entry in entries:
        seq = entry.get("seq")
        if seq != expected_seq:
            problem = (
                f"entry {expected_seq} is missing (next is {seq})"
                if isinstance(seq, int) and seq > expected_seq
                else f"entry {seq} is out of order (expected {expected_seq})"
            )
            return Verification(False, count, prev, expected_seq, problem)
        if entry.get("prev_hash") != prev:
            return Verification(
                False, count, prev, seq, f"entry {seq} does not follow entry {seq - 1}"
            )
        if entry_hash(entry) != entry.get("hash"):
            return Verification(
                False, count, prev, seq, f"entry {seq} was altered after it was written"
            )
        prev, expected_seq, count = entry["hash"], expected_seq + 1, count + 1
    return Verification(True, count, prev)


def iter_entries(session: Session, *, batch_size: int = 5000, **filters) -> Iterator[dict]:
    """Stream entries in seq order with keyset pagination (flat memory for any size)."""
    last_seq = 0
    while True:
        query = filtered(select(AuditEntry), **filters).where(AuditEntry.seq > last_seq)
        rows = session.exec(query.order_by(AuditEntry.seq).limit(batch_size)).all()
        if not rows:
            return
        for row in rows:
            yield entry_dict(row)
        last_seq = rows[-1].seq
        session.expunge_all()


def verify(session: Session) -> Verification:
    """Verify the whole chain stored in the database."""
    return verify_entries(iter_entries(session))


def filtered(
    query,
    *,
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
):
    """Apply the audit page's filters to a query over AuditEntry."""
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    if target_type:
        query = query.where(AuditEntry.target_type == target_type)
    if target_id:
        query = query.where(AuditEntry.target_id == str(target_id))
    if since:
        query = query.where(AuditEntry.at >= format_at(since))
    if until:
        query = query.where(AuditEntry.at < format_at(until))
    return query


def count(session: Session) -> int:
    """Number of entries in the chain."""
    return session.exec(select(sa.func.count()).select_from(AuditEntry)).one()


# --- triggers: created by the Alembic migrations ------------------------------------------

SQLITE_TRIGGERS = [
    """CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries
       BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_entries_no_delete BEFORE DELETE ON audit_entries
       BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only: DELETE refused'); END""",
]

POSTGRES_TRIGGERS = [
    # %% because the driver treats a lone % as a placeholder marker.
    """CREATE OR REPLACE FUNCTION audit_entries_refuse() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'audit_entries is append-only: %% refused', TG_OP; END;
       $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS audit_entries_no_change ON audit_entries",
    """CREATE TRIGGER audit_entries_no_change BEFORE UPDATE OR DELETE ON audit_entries
       FOR EACH ROW EXECUTE FUNCTION audit_entries_refuse()""",
    # Row triggers do not fire on TRUNCATE (PITFALLS.md #4).
    "DROP TRIGGER IF EXISTS audit_entries_no_truncate ON audit_entries",
    """CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
       FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_refuse()""",
]


def create_triggers(connection) -> None:
    """Install the append-only triggers (any migration that touches the table calls this)."""
    statements = SQLITE_TRIGGERS if connection.dialect.name == "sqlite" else POSTGRES_TRIGGERS
    for statement in statements:
        connection.exec_driver_sql(statement)


def drop_triggers(connection) -> None:
    """Remove the append-only triggers (downgrade only)."""
    if connection.dialect.name == "sqlite":
        for name in ("audit_entries_no_update", "audit_entries_no_delete"):
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    else:
        for name in ("audit_entries_no_change", "audit_entries_no_truncate"):
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON audit_entries")
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS audit_entries_refuse()")


def trigger_names(connection) -> set[str]:
    """Names of the append-only triggers present on audit_entries."""
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='audit_entries'"
        )
    else:
        rows = connection.exec_driver_sql(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_entries'::regclass "
            "AND NOT tgisinternal"
        )
    return {row[0] for row in rows}
