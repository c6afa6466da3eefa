"""The append-only, hash-chained audit trail: record, verify, export (format in DESIGN.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from webapp.db import WRITE_OPTION
from webapp.models import AuditEntry
from webapp.trail import tree

GENESIS_HASH = "0" * 64
# Key of the transaction-scoped advisory lock that serialises appends on PostgreSQL.
AUDIT_LOCK_KEY = 0x6465736B  # "desk"
ENTRY_FIELDS = ("seq", "at", "actor", "action", "target_type", "target_id", "details", "prev_hash")
ROW_FIELDS = ENTRY_FIELDS + ("hash",)

SYSTEM_ACTOR = "system"
# session.info key of the entry this session's transaction appended last (see _last_link).
_LAST_APPENDED = "desk_audit_last_appended"
# session.info key of the Merkle tree's right edge as this transaction left it (see _frontier).
_FRONTIER = "desk_audit_tree_frontier"


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


def locked_link(session: Session) -> tuple[int, str]:
    """Take the chain's append lock and return the head's (seq, hash), (0, zeros) if empty.

    Until the caller's transaction ends nothing else can be appended, so the head it returns
    stays the head (what a signed checkpoint needs).
    """
    _lock_chain(session)
    return _last_link(session)


def head(session: Session) -> AuditEntry | None:
    """The last entry of the chain, or None when it is empty."""
    return session.exec(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()


# The channel a call came through when it is not a page or the REST API ("mcp"): every entry
# written while it is set carries it as details["via"].
_VIA: ContextVar[str | None] = ContextVar("desk_audit_via", default=None)


@contextmanager
def via(channel: str) -> Iterator[None]:
    """Mark every entry recorded inside the block as made through `channel`."""
    token = _VIA.set(channel)
    try:
        yield
    finally:
        _VIA.reset(token)


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
    channel = _VIA.get()
    if channel is not None and "via" not in (details or {}):
        details = {**(details or {}), "via": channel}
    _lock_chain(session)
    last_seq, last_hash = _last_link(session)
    entry = {
        "seq": last_seq + 1,
        "at": format_at(at or datetime.now(UTC)),
        "actor": actor,
        "action": action,
        "target_type": target_type,
        "target_id": "" if target_id is None else str(target_id),
        "details": details or {},
        "prev_hash": last_hash,
    }
    entry["hash"] = entry_hash(entry)
    row = AuditEntry(**{**entry, "details": canonical_json(entry["details"])})
    # Not flushed here: the appends of one transaction go to the database together at its
    # next flush or commit (one multi-row INSERT), which is what makes bulk appends fast.
    session.add(row)
    # The Merkle tree grows in the same transaction: a committed entry always has its leaf.
    tree.grow(session, _frontier(session, last_seq), last_seq, entry["hash"])
    session.info[_LAST_APPENDED] = (session.get_transaction(), row)
    return row


def _frontier(session: Session, size: int) -> dict:
    """The tree nodes this transaction knows on the right edge of a tree of `size` leaves."""
    transaction = session.get_transaction()
    cached = session.info.get(_FRONTIER)
    if cached is not None and cached[0] is transaction and cached[1] == size:
        frontier = cached[2]
    else:
        frontier = {}
    session.info[_FRONTIER] = (transaction, size + 1, frontier)
    return frontier


def _last_link(session: Session) -> tuple[int, str]:
    """(seq, hash) of the chain's head, as this transaction sees it.

    A use case appending many entries in one transaction (under the chain lock) skips the
    head query after its first append: the entry it appended last is the head.
    """
    cached = session.info.get(_LAST_APPENDED)
    if cached is not None:
        transaction, row = cached
        # A rollback (of the transaction or a savepoint) expunges the row: query again then.
        if transaction is session.get_transaction() and row in session:
            return row.seq, row.hash
    session.flush()  # appends still pending in this session are part of the chain
    found = (
        session.connection()
        .execute(
            sa.select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
        )
        .first()
    )
    return (found[0], found[1]) if found else (0, GENESIS_HASH)


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
    return _check_links(
        (entry.get("seq"), entry.get("prev_hash"), entry.get("hash"), entry_hash(entry))
        for entry in entries
    )


def _check_links(links: Iterable[tuple]) -> Verification:
    """Walk (seq, prev_hash, stored hash, recomputed hash) links from seq 1 on."""
    expected_seq, prev, count = 1, GENESIS_HASH, 0
    for seq, prev_hash, stored, computed in links:
        if seq != expected_seq:
            problem = (
                f"entry {expected_seq} is missing (next is {seq})"
                if isinstance(seq, int) and seq > expected_seq
                else f"entry {seq} is out of order (expected {expected_seq})"
            )
            return Verification(False, count, prev, expected_seq, problem)
        if prev_hash != prev:
            return Verification(
                False, count, prev, seq, f"entry {seq} does not follow entry {seq - 1}"
            )
        if computed != stored:
            return Verification(
                False, count, prev, seq, f"entry {seq} was altered after it was written"
            )
        prev, expected_seq, count = stored, expected_seq + 1, count + 1
    return Verification(True, count, prev)


# json.dumps(..., ensure_ascii=False) escapes strings with exactly this function.
_json_string = json.encoder.encode_basestring


def _row_text(row: tuple, *, with_hash: bool) -> str:
    """A stored row serialised canonically, assembled around its stored details text."""
    seq, at, actor, action, target_type, target_id, details, prev_hash, stored = row
    hash_member = f'"hash":{_json_string(stored)},' if with_hash else ""
    return (
        f'{{"action":{_json_string(action)},"actor":{_json_string(actor)},'
        f'"at":{_json_string(at)},"details":{details},{hash_member}'
        f'"prev_hash":{_json_string(prev_hash)},"seq":{seq},'
        f'"target_id":{_json_string(target_id)},"target_type":{_json_string(target_type)}}}'
    )


def row_hash(row: tuple) -> str:
    """entry_hash of a stored row (ROW_FIELDS order), without parsing its details.

    The details column holds canonical JSON already (record() writes it so), so the hashed
    text can be assembled directly: this is what makes verifying a million entries fast. A
    row whose details text is not canonical falls back to parsing, so the result is always
    the same as entry_hash(row_dict(row)).
    """
    digest = hashlib.sha256(_row_text(row, with_hash=False).encode("utf-8")).hexdigest()
    if digest == row[8]:
        return digest
    try:
        return entry_hash(row_dict(row))
    except (TypeError, ValueError):  # details that are not JSON at all: altered
        return digest


def row_json(row: tuple) -> str:
    """A stored row as one line of the JSONL export, without parsing its details.

    Equal to canonical_json(row_dict(row)) for every row record() wrote, whose details text is
    canonical already.
    """
    return _row_text(row, with_hash=True)


def row_dict(row: tuple) -> dict:
    """A stored row (ROW_FIELDS order) as the JSON object of the export format."""
    entry = dict(zip(ROW_FIELDS, row, strict=True))
    entry["details"] = json.loads(entry["details"])
    return entry


def iter_rows(
    session: Session, *, batch_size: int = 20000, max_seq: int | None = None, **filters
) -> Iterator[tuple]:
    """Stream stored rows (ROW_FIELDS order) in seq order: plain tuples, keyset-paginated."""
    columns = [getattr(AuditEntry, name) for name in ROW_FIELDS]
    connection = session.connection()
    last_seq = 0
    while True:
        query = filtered(sa.select(*columns), **filters).where(AuditEntry.seq > last_seq)
        if max_seq is not None:
            query = query.where(AuditEntry.seq <= max_seq)
        rows = _fetch(connection, query.order_by(AuditEntry.seq).limit(batch_size))
        if not rows:
            return
        yield from rows
        last_seq = rows[-1][0]


def _fetch(connection, query) -> list[tuple]:
    """Run a Core query on the driver's cursor: plain tuples, no SQLAlchemy row objects.

    Three times faster over a million rows, which is what keeps verification within seconds.
    Safe for audit_entries: its columns are integers and text, which need no type processing.
    """
    compiled = query.compile(dialect=connection.dialect)
    params = compiled.params
    if compiled.positiontup is not None:
        params = tuple(params[name] for name in compiled.positiontup)
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        return cursor.fetchall()
    finally:
        cursor.close()


def iter_entries(
    session: Session, *, batch_size: int = 5000, max_seq: int | None = None, **filters
) -> Iterator[dict]:
    """Stream entries in seq order with keyset pagination (flat memory for any size)."""
    for row in iter_rows(session, batch_size=batch_size, max_seq=max_seq, **filters):
        yield row_dict(row)


def verify(session: Session, *, max_seq: int | None = None) -> Verification:
    """Verify the whole chain stored in the database (or its first `max_seq` entries)."""
    return _check_links(
        (row[0], row[7], row[8], row_hash(row)) for row in iter_rows(session, max_seq=max_seq)
    )


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


def distinct_values(session: Session, column: str, *, limit: int = 200) -> list[str]:
    """The distinct values of `actor`, `action` or `target_type`, sorted, at most `limit`.

    A loose index scan (a recursive "next value after this one"), so a trail of a million
    entries costs one index probe per distinct value, on SQLite and PostgreSQL alike.
    """
    if column not in ("actor", "action", "target_type"):
        raise ValueError(f"not a filterable column: {column}")
    statement = sa.text(
        f"WITH RECURSIVE found(value, n) AS ("  # noqa: S608 (column is one of three names)
        f" SELECT (SELECT min({column}) FROM audit_entries), 1"
        f" UNION ALL SELECT (SELECT min({column}) FROM audit_entries WHERE {column} > found.value),"
        f" n + 1 FROM found WHERE found.value IS NOT NULL AND n < :limit"
        f") SELECT value FROM found WHERE value IS NOT NULL"
    )
    return list(session.execute(statement, {"limit": limit}).scalars())


def count(session: Session) -> int:
    """Number of entries in the chain."""
    return session.exec(select(sa.func.count()).select_from(AuditEntry)).one()


# --- triggers: created by the Alembic migrations ------------------------------------------

SQLITE_TRIGGERS = [
    """CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries
       BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_entries_no_delete BEFORE DELETE ON audit_entries
       BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only: DELETE refused'); END""",
    # REPLACE / INSERT OR REPLACE delete the conflicting row without firing the DELETE trigger
    # unless recursive_triggers is on (PITFALLS.md #16): an entry must be the next seq, so no
    # insert can land on (or below) an existing one, nor leave a gap.
    """CREATE TRIGGER IF NOT EXISTS audit_entries_next_seq_only BEFORE INSERT ON audit_entries
       WHEN NEW.seq <> (SELECT coalesce(max(seq), 0) FROM audit_entries) + 1
       BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only: only the next seq may be added');
       END""",
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
    # Upserts (ON CONFLICT DO UPDATE / DO NOTHING) and inserts at a used or later seq: an
    # entry must be the next seq. Appends are serialised (AUDIT_LOCK_KEY), so max is stable.
    """CREATE OR REPLACE FUNCTION audit_entries_next_seq_only() RETURNS trigger AS $$
       BEGIN
         IF NEW.seq <> (SELECT coalesce(max(seq), 0) FROM audit_entries) + 1 THEN
           RAISE EXCEPTION 'audit_entries is append-only: only the next seq may be added';
         END IF;
         RETURN NEW;
       END;
       $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS audit_entries_next_seq_only ON audit_entries",
    """CREATE TRIGGER audit_entries_next_seq_only BEFORE INSERT ON audit_entries
       FOR EACH ROW EXECUTE FUNCTION audit_entries_next_seq_only()""",
]

# The Merkle tree's nodes and the signed tree heads are append-only too.
TREE_TABLES = ("audit_tree_nodes", "audit_tree_heads")


def _sqlite_append_only(table: str) -> list[str]:
    return [
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END""",
    ]


def _postgres_append_only(table: str) -> list[str]:
    return [
        """CREATE OR REPLACE FUNCTION desk_append_only_refuse() RETURNS trigger AS $$
           BEGIN RAISE EXCEPTION '%% is append-only: %% refused', TG_TABLE_NAME, TG_OP; END;
           $$ LANGUAGE plpgsql""",
        f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}",
        f"""CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION desk_append_only_refuse()""",
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION desk_append_only_refuse()""",
    ]


def create_tree_triggers(connection) -> None:
    """Make the tree's nodes and heads append-only (the transparency-log migration)."""
    for table in TREE_TABLES:
        if connection.dialect.name == "sqlite":
            statements = _sqlite_append_only(table)
        else:
            statements = _postgres_append_only(table)
        for statement in statements:
            connection.exec_driver_sql(statement)


def drop_tree_triggers(connection) -> None:
    """Remove the tree tables' triggers (downgrade, and tests that play a DBA)."""
    for table in TREE_TABLES:
        if connection.dialect.name == "sqlite":
            for name in (f"{table}_no_update", f"{table}_no_delete"):
                connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        else:
            for name in (f"{table}_no_change", f"{table}_no_truncate"):
                connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON {table}")


def create_triggers(connection) -> None:
    """Install the append-only triggers (any migration that touches the table calls this)."""
    statements = SQLITE_TRIGGERS if connection.dialect.name == "sqlite" else POSTGRES_TRIGGERS
    for statement in statements:
        connection.exec_driver_sql(statement)


def drop_triggers(connection) -> None:
    """Remove the append-only triggers (downgrade only)."""
    if connection.dialect.name == "sqlite":
        for name in (
            "audit_entries_no_update",
            "audit_entries_no_delete",
            "audit_entries_next_seq_only",
        ):
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    else:
        for name in (
            "audit_entries_no_change",
            "audit_entries_no_truncate",
            "audit_entries_next_seq_only",
        ):
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON audit_entries")
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS audit_entries_refuse()")
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS audit_entries_next_seq_only()")


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
