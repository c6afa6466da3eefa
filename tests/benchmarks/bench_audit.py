"""Audit trail benchmarks on SQLite: append rate, verifying 1,000,000 entries, CSV export.

Method (stated with the figures):
- append: 10,000 `audit.record` calls (each also grows the Merkle tree), 100 per transaction
  (a use case that audits many things in one commit, e.g. a purge or a submission); the
  one-entry-per-transaction rate is shown as a note — there each commit's fsync and connection
  set-up dominate, not the chain.
- verify: 1,000,000 chained entries seeded with executemany, then `audit.verify` end to end.
- export: `exports.audit_csv` of 100,000 entries drained completely.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from webapp import create_app, migrations
from webapp.db import get_engine, session_scope
from webapp.models import utcnow
from webapp.trail import audit, exports, merkle

APPENDS, PER_TRANSACTION, SINGLES = 10_000, 100, 500
VERIFY_ENTRIES, EXPORT_ENTRIES = 1_000_000, 100_000


@contextmanager
def bench_app(folder: Path):
    """A desk on a fresh, migrated SQLite database in `folder` (scheduler off)."""
    url = f"sqlite:///{folder / 'bench.db'}"
    migrations.upgrade(url)
    saved = {key: os.environ.get(key) for key in ("DESK_DATABASE_URL", "DESK_SCHEDULER")}
    os.environ.update(DESK_DATABASE_URL=url, DESK_SCHEDULER="off")
    try:
        app = create_app({"INSTANCE_PATH": str(folder / "instance")})
        yield app
        get_engine(app).dispose()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def chained_rows(count: int, start_seq: int = 1, prev: str = audit.GENESIS_HASH) -> Iterator:
    """Rows (ROW_FIELDS order) of a valid chain, generated lazily (flat memory for 1M)."""
    at = audit.format_at(utcnow())
    for seq in range(start_seq, start_seq + count):
        entry = {
            "seq": seq,
            "at": at,
            "actor": "bench@example.org",
            "action": "bench.appended",
            # Not about any batch: a pack carries only its own batch's entries.
            "target_type": "bench",
            "target_id": str(seq % 997),
            "details": {"n": seq, "fingerprint": "ab" * 32},
            "prev_hash": prev,
        }
        digest = audit.entry_hash(entry)
        yield (
            *(entry[name] for name in audit.ENTRY_FIELDS[:6]),
            audit.canonical_json(entry["details"]),
            prev,
            digest,
        )
        prev = digest


def seed_sqlite(path: Path, count: int, *, chunk: int = 200_000) -> None:
    """Append `count` chained entries after the head, and their Merkle tree nodes, in bulk.

    What `audit.record` writes, without its per-entry round trips: entries with executemany,
    the tree's nodes computed by `merkle.nodes_for_appends` (the migration's way).
    """
    with sqlite3.connect(path) as connection:
        row = connection.execute(
            "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        start, prev = (row[0] + 1, row[1]) if row else (1, audit.GENESIS_HASH)
        size = start - 1
        frontier = _stored_nodes(connection, merkle.needed_nodes_for_append(size))
        rows = chained_rows(count, start, prev)
        while True:
            part = list(itertools.islice(rows, chunk))
            if not part:
                break
            connection.executemany(
                "INSERT INTO audit_entries (seq, at, actor, action, target_type, target_id, "
                "details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                part,
            )
            leaves = [merkle.leaf_hash(entry[-1]) for entry in part]
            nodes = merkle.nodes_for_appends(size, leaves, merkle.dict_getter(frontier))
            connection.executemany(
                "INSERT INTO audit_tree_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes
            )
            size += len(part)
            known = {**frontier, **{(level, idx): value for level, idx, value in nodes}}
            frontier = {node: known[node] for node in merkle.needed_nodes_for_append(size)}


def _stored_nodes(connection: sqlite3.Connection, nodes) -> dict:
    found = {}
    for level, idx in nodes:
        row = connection.execute(
            "SELECT hash FROM audit_tree_nodes WHERE level = ? AND idx = ?", (level, idx)
        ).fetchone()
        found[level, idx] = bytes(row[0])
    return found


def _append(app, count: int, per_transaction: int) -> float:
    started = time.perf_counter()
    with app.app_context():
        for _ in range(count // per_transaction):
            with session_scope(write=True) as session:
                for n in range(per_transaction):
                    audit.record(
                        session,
                        actor="bench@example.org",
                        action="bench.appended",
                        target_type="batch",
                        target_id=n,
                        details={"n": n, "fingerprint": "ab" * 32},
                    )
                session.commit()
    return count / (time.perf_counter() - started)


def run() -> list[dict]:
    """The figures: append rate, 1M verify time, 100k CSV export time."""
    with tempfile.TemporaryDirectory() as tmp, bench_app(Path(tmp)) as app:
        batched = _append(app, APPENDS, PER_TRANSACTION)
        single = _append(app, SINGLES, 1)
        db = Path(tmp) / "bench.db"
        seed_sqlite(db, EXPORT_ENTRIES - APPENDS - SINGLES)
        started = time.perf_counter()
        size = sum(len(chunk) for chunk in exports.audit_csv(app))
        export_seconds = time.perf_counter() - started
        seed_sqlite(db, VERIFY_ENTRIES - EXPORT_ENTRIES)
        with app.app_context(), session_scope(write=False) as session:
            started = time.perf_counter()
            result = audit.verify(session)
            verify_seconds = time.perf_counter() - started
        assert result.ok and result.entries == VERIFY_ENTRIES, result
    return [
        {
            "name": "audit append with tree maintenance (audit.record, 100 per transaction)",
            "value": batched,
            "unit": "entries/s",
            "limit": 2000,
            "ok": batched >= 2000,
            "note": f"{APPENDS:,} appends; one per transaction: {single:,.0f}/s "
            f"({SINGLES} commits, each with its own connection and fsync)",
        },
        {
            "name": "audit verify of 1,000,000 entries (SQLite)",
            "value": verify_seconds,
            "unit": "s",
            "limit": 10,
            "ok": verify_seconds <= 10,
        },
        {
            "name": "audit CSV export of 100,000 entries",
            "value": export_seconds,
            "unit": "s",
            "limit": 3,
            "ok": export_seconds <= 3,
            "note": f"{size / 1e6:.1f} MB streamed",
        },
    ]
