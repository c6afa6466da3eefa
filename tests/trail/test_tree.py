"""The trail's Merkle tree in the database: grown with every append, proofs, append-only.

Roots and proofs are checked against the RFC's recursive definitions computed here from the
entries themselves, not against the desk's own tree code.
"""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa
from conftest import ON_POSTGRES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import DBAPIError, IntegrityError

from webapp.db import get_engine, session_scope
from webapp.models import AuditTreeNode
from webapp.trail import audit, merkle, tree


def _append(app, n: int, *, per_transaction: int = 1) -> None:
    with app.app_context():
        done = 0
        while done < n:
            with session_scope(write=True) as session:
                for _ in range(min(per_transaction, n - done)):
                    audit.record(
                        session,
                        actor="tester",
                        action="test.appended",
                        target_type="test",
                        target_id=done,
                        details={"i": done},
                    )
                    done += 1
                session.commit()


def _hashes(app) -> list[str]:
    with app.app_context(), session_scope(write=False) as session:
        return [entry["hash"] for entry in audit.iter_entries(session)]


def _leaf(entry_hash: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(entry_hash)).digest()


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1, literally."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]), literally."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return _path(m, leaves[:k]) + [_mth(leaves[k:])]
    return _path(m - k, leaves[k:]) + [_mth(leaves[:k])]


def _subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b), literally."""
    if m == len(leaves):
        return [] if complete else [_mth(leaves)]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m <= k:
        return _subproof(m, leaves[:k], complete) + [_mth(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [_mth(leaves[:k])]


@pytest.mark.parametrize("per_transaction", [1, 7, 40])
def test_the_stored_tree_gives_the_rfc_root_at_every_size(app, per_transaction):
    _append(app, 40, per_transaction=per_transaction)
    leaves = [_leaf(h) for h in _hashes(app)]
    with app.app_context(), session_scope(write=False) as session:
        assert tree.size(session) == 40
        for size in range(1, 41):
            assert tree.root(session, size) == _mth(leaves[:size]), size


def test_proofs_over_the_database_match_the_rfc(app):
    _append(app, 23, per_transaction=5)
    leaves = [_leaf(h) for h in _hashes(app)]
    with app.app_context(), session_scope(write=False) as session:
        for size in (1, 2, 7, 8, 16, 23):
            root = _mth(leaves[:size])
            for seq in range(1, size + 1):
                proof = tree.inclusion(session, seq, size)
                assert proof["leaf_index"] == seq - 1
                assert proof["leaf_hash"] == leaves[seq - 1].hex()
                path = [bytes.fromhex(p) for p in proof["path"]]
                assert path == _path(seq - 1, leaves[:size])
                assert merkle.verify_inclusion(leaves[seq - 1], seq - 1, size, path, root)
            for first in range(1, size + 1):
                proof = tree.consistency(session, first, size)
                path = [bytes.fromhex(p) for p in proof["path"]]
                assert path == _subproof(first, leaves[:size], True)
                assert merkle.verify_consistency(first, size, _mth(leaves[:first]), root, path)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sizes=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=6))
def test_transactions_of_any_size_keep_the_tree_whole(app, sizes):
    with app.app_context(), session_scope(write=False) as session:
        before = tree.size(session)
    for n in sizes:
        _append(app, n, per_transaction=n)
    leaves = [_leaf(h) for h in _hashes(app)]
    with app.app_context(), session_scope(write=False) as session:
        size = tree.size(session)
        assert size == before + sum(sizes)
        assert tree.root(session, size) == _mth(leaves)


def test_a_rolled_back_append_leaves_no_node(app):
    _append(app, 5)
    with app.app_context(), session_scope(write=True) as session:
        audit.record(session, actor="x", action="test.rolled_back", target_type="test")
        session.flush()
        session.rollback()
    _append(app, 1)
    leaves = [_leaf(h) for h in _hashes(app)]
    with app.app_context(), session_scope(write=False) as session:
        nodes = session.exec(sa.select(sa.func.count()).select_from(AuditTreeNode)).one()[0]
        assert nodes == 2 * 6 - (6).bit_count()
        assert tree.root(session, 6) == _mth(leaves)


def test_roots_while_reading_agree_with_the_stored_tree(app):
    _append(app, 19, per_transaction=4)
    hashes = _hashes(app)
    roots = tree.roots_while_reading(iter(hashes), {1, 5, 16, 19})
    with app.app_context(), session_scope(write=False) as session:
        for size, root in roots.items():
            assert root == tree.root(session, size)


def test_tree_build_catches_up_an_existing_trail(app):
    """What the migration does for a trail written before the tree existed."""
    _append(app, 12, per_transaction=12)
    with app.app_context(), session_scope(write=False) as session:
        expected = tree.root(session, 12)
    with app.app_context(), get_engine().begin() as connection:
        audit.drop_tree_triggers(connection)
        connection.exec_driver_sql("DELETE FROM audit_tree_nodes")
        audit.create_tree_triggers(connection)
    with app.app_context(), session_scope(write=True) as session:
        assert tree.build(session, batch_size=5) == 12
        session.commit()
    with app.app_context(), session_scope(write=False) as session:
        assert tree.root(session, 12) == expected


@pytest.mark.parametrize(
    ("seq", "size", "problem"),
    [(0, 3, "not in the tree"), (4, 3, "not in the tree"), (1, 9, "no tree of size 9")],
)
def test_proofs_for_entries_or_sizes_that_do_not_exist_are_refused(app, seq, size, problem):
    _append(app, 3)
    with (
        app.app_context(),
        session_scope(write=False) as session,
        pytest.raises(tree.ProofError, match=problem),
    ):
        tree.inclusion(session, seq, size)


# --- append-only, really ---------------------------------------------------------------

SQLITE_REWRITES = [
    "REPLACE INTO audit_entries SELECT seq, at, 'mallory', action, target_type, target_id, "
    "details, prev_hash, hash FROM audit_entries WHERE seq = 1",
    "INSERT OR REPLACE INTO audit_entries SELECT seq, at, 'mallory', action, target_type, "
    "target_id, details, prev_hash, hash FROM audit_entries WHERE seq = 1",
    "INSERT INTO audit_entries SELECT seq, at, 'mallory', action, target_type, target_id, "
    "details, prev_hash, hash FROM audit_entries WHERE seq = 1 "
    "ON CONFLICT (seq) DO UPDATE SET actor = excluded.actor",
    "INSERT INTO audit_entries SELECT seq + 5, at, actor, action, target_type, target_id, "
    "details, prev_hash, lower(hex(randomblob(32))) FROM audit_entries WHERE seq = 1",
]
POSTGRES_REWRITES = [
    "INSERT INTO audit_entries SELECT seq, at, 'mallory', action, target_type, target_id, "
    "details, prev_hash, hash FROM audit_entries WHERE seq = 1 "
    "ON CONFLICT (seq) DO UPDATE SET actor = excluded.actor",
    "INSERT INTO audit_entries SELECT seq, at, 'mallory', action, target_type, target_id, "
    "details, prev_hash, hash FROM audit_entries WHERE seq = 1 ON CONFLICT DO NOTHING",
    "INSERT INTO audit_entries SELECT seq + 5, at, actor, action, target_type, target_id, "
    "details, prev_hash, md5(hash) || md5(hash) FROM audit_entries WHERE seq = 1",
    "MERGE INTO audit_entries t USING (SELECT 1 AS seq) s ON t.seq = s.seq "
    "WHEN MATCHED THEN UPDATE SET actor = 'mallory'",
]


@pytest.mark.parametrize("index", range(4))
def test_replace_upserts_and_gaps_are_refused(app, index):
    _append(app, 3)
    statement = (POSTGRES_REWRITES if ON_POSTGRES else SQLITE_REWRITES)[index]
    with (
        app.app_context(),
        pytest.raises((DBAPIError, IntegrityError), match="append-only"),
        get_engine().begin() as connection,
    ):
        connection.exec_driver_sql(statement)
    with app.app_context(), session_scope(write=False) as session:
        entries = list(audit.iter_entries(session))
        assert [e["actor"] for e in entries] == ["tester"] * 3
        assert audit.verify(session).ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_tree_nodes SET hash = hash WHERE level = 0",
        "DELETE FROM audit_tree_nodes",
        "UPDATE audit_tree_heads SET root_hash = root_hash",
        "DELETE FROM audit_tree_heads",
    ],
)
def test_the_tree_and_its_heads_are_append_only(app, statement):
    _append(app, 3)
    with app.app_context(), get_engine().begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO audit_tree_heads (tree_size, root_hash, timestamp, key_id, signature) "
            "VALUES (3, 'r', 't', 'k', 's')"
        )
    with (
        app.app_context(),
        pytest.raises(DBAPIError, match="append-only"),
        get_engine().begin() as connection,
    ):
        connection.exec_driver_sql(statement)


@pytest.mark.postgres_only
@pytest.mark.parametrize("table", ["audit_tree_nodes", "audit_tree_heads"])
def test_truncating_the_tree_is_refused_on_postgres(app, table):
    _append(app, 2)
    with (
        app.app_context(),
        pytest.raises(DBAPIError, match="append-only"),
        get_engine().begin() as connection,
    ):
        connection.exec_driver_sql(f"TRUNCATE {table}")
