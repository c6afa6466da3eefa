"""The audit trail as an RFC 9162 Merkle tree: its stored nodes, roots and proofs.

Leaf i is entry seq i+1 (leaf hash = SHA-256(0x00 ‖ entry hash bytes)); the nodes of perfect
subtrees are stored in `audit_tree_nodes` in the same transaction as the entries they cover
(`audit.record` calls `grow`), so a root or proof for any size takes one query for O(log n)
rows. The hashing and proof shapes are in `merkle.py`, written from the RFC.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import Session

from webapp.models import AuditEntry, AuditTreeNode
from webapp.trail import merkle

# Rows per statement when many nodes are read or written at once.
_CHUNK = 500


class ProofError(ValueError):
    """A proof or root was asked for a size or index the tree does not have."""


def size(session: Session) -> int:
    """Entries in the trail, which is the tree's size (seq runs 1..n without gaps)."""
    return session.exec(sa.select(sa.func.coalesce(sa.func.max(AuditEntry.seq), 0))).one()[0]


def fetch(session: Session, nodes: Iterable[merkle.Node]) -> dict[merkle.Node, bytes]:
    """The stored hashes of `nodes`, in as few queries as their number allows."""
    by_level: dict[int, list[int]] = {}
    for level, idx in sorted(set(nodes)):
        by_level.setdefault(level, []).append(idx)
    # One `level = ? AND idx IN (…)` per level, OR-ed: both databases answer it from the
    # primary key. (A row-value IN over (level, idx) scans the table on SQLite.)
    wanted = [(level, idx) for level, idxs in by_level.items() for idx in idxs]
    found: dict[merkle.Node, bytes] = {}
    for start in range(0, len(wanted), _CHUNK):
        part: dict[int, list[int]] = {}
        for level, idx in wanted[start : start + _CHUNK]:
            part.setdefault(level, []).append(idx)
        condition = sa.or_(
            *(
                sa.and_(AuditTreeNode.level == level, AuditTreeNode.idx.in_(idxs))
                for level, idxs in part.items()
            )
        )
        rows = session.exec(
            sa.select(AuditTreeNode.level, AuditTreeNode.idx, AuditTreeNode.hash).where(condition)
        ).all()
        found.update({(level, idx): bytes(value) for level, idx, value in rows})
    return found


def grow(session: Session, frontier: dict[merkle.Node, bytes], size: int, entry_hash: str) -> None:
    """Add the nodes that appending entry number size+1 creates (caller's transaction).

    `frontier` holds the nodes this transaction already knows; missing ones are read once.
    """
    needed = merkle.needed_nodes_for_append(size)
    missing = [node for node in needed if node not in frontier]
    if missing:
        frontier.update(fetch(session, missing))
    for level, idx, value in merkle.nodes_for_append(
        size, merkle.leaf_hash(entry_hash), merkle.dict_getter(frontier)
    ):
        session.add(AuditTreeNode(level=level, idx=idx, hash=value))
        frontier[level, idx] = value
    # Only the right edge is ever read again: drop what no later append can need.
    keep = merkle.needed_nodes_for_append(size + 1)
    for node in [node for node in frontier if node not in keep]:
        del frontier[node]


def _checked_size(session: Session, tree_size: int) -> None:
    current = size(session)
    if not 0 < tree_size <= current:
        raise ProofError(f"The trail has {current} entries; there is no tree of size {tree_size}.")


def root(session: Session, tree_size: int) -> bytes:
    """The Merkle tree hash of the first `tree_size` entries."""
    if tree_size == 0:
        return merkle.EMPTY_ROOT
    _checked_size(session, tree_size)
    nodes = fetch(session, merkle.needed_nodes_for_root(tree_size))
    return merkle.root(tree_size, merkle.dict_getter(nodes))


def leaf_of(session: Session, seq: int) -> bytes:
    """The leaf hash of entry `seq`, as stored in the tree."""
    nodes = fetch(session, [(0, seq - 1)])
    if (0, seq - 1) not in nodes:
        raise ProofError(f"There is no entry {seq} in the trail.")
    return nodes[0, seq - 1]


def inclusion(session: Session, seq: int, tree_size: int) -> dict:
    """The inclusion proof of entry `seq` in the tree of `tree_size` (DESIGN.md's shape)."""
    _checked_size(session, tree_size)
    if not 0 < seq <= tree_size:
        raise ProofError(f"Entry {seq} is not in the tree of size {tree_size}.")
    index = seq - 1
    nodes = fetch(session, merkle.needed_nodes_for_inclusion(index, tree_size) | {(0, index)})
    path = merkle.inclusion_proof(index, tree_size, merkle.dict_getter(nodes))
    return {
        "seq": seq,
        "leaf_index": index,
        "tree_size": tree_size,
        "leaf_hash": nodes[0, index].hex(),
        "path": [value.hex() for value in path],
    }


def consistency(session: Session, first: int, second: int) -> dict:
    """The consistency proof between the trees of sizes `first` and `second` (DESIGN.md)."""
    _checked_size(session, second)
    if not 0 < first <= second:
        raise ProofError(f"A consistency proof needs 0 < first ≤ second; got {first} and {second}.")
    nodes = fetch(session, merkle.needed_nodes_for_consistency(first, second))
    path = merkle.consistency_proof(first, second, merkle.dict_getter(nodes))
    return {"first": first, "second": second, "path": [value.hex() for value in path]}


def build(session: Session, *, batch_size: int = 50_000) -> int:
    """Store the nodes of every entry not yet in the tree (a migration, or after a restore)."""
    done = session.exec(
        sa.select(sa.func.count()).select_from(AuditTreeNode).where(AuditTreeNode.level == 0)
    ).one()[0]
    total = size(session)
    frontier = fetch(session, merkle.needed_nodes_for_append(done))
    while done < total:
        hashes = session.exec(
            sa.select(AuditEntry.hash)
            .where(AuditEntry.seq > done)
            .order_by(AuditEntry.seq)
            .limit(batch_size)
        ).all()
        leaves = [merkle.leaf_hash(row[0]) for row in hashes]
        rows = merkle.nodes_for_appends(done, leaves, merkle.dict_getter(frontier))
        session.execute(
            sa.insert(AuditTreeNode),
            [{"level": level, "idx": idx, "hash": value} for level, idx, value in rows],
        )
        done += len(leaves)
        known = {**frontier, **{(level, idx): value for level, idx, value in rows}}
        frontier = {node: known[node] for node in merkle.needed_nodes_for_append(done)}
    return done


def roots_while_reading(entry_hashes: Iterable[str], sizes: set[int]) -> dict[int, bytes]:
    """The roots at `sizes`, recomputed from the entries' hashes in seq order (no stored node).

    A stack of perfect subtrees (a compact range) keeps this O(n) with O(log n) memory, so
    `desk audit verify` can check every signed tree head against the trail itself.
    """
    stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing
    roots: dict[int, bytes] = {}
    if 0 in sizes:
        roots[0] = merkle.EMPTY_ROOT
    for count, entry_hash in enumerate(entry_hashes, start=1):
        level, value = 0, merkle.leaf_hash(entry_hash)
        while stack and stack[-1][0] == level:
            value = merkle.node_hash(stack.pop()[1], value)
            level += 1
        stack.append((level, value))
        if count in sizes:
            folded = stack[-1][1]
            for _, left in reversed(stack[:-1]):
                folded = merkle.node_hash(left, folded)
            roots[count] = folded
    return roots
