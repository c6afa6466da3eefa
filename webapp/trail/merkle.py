"""RFC 9162 §2.1 Merkle tree over stored hashes of perfect aligned subtrees.

Storage model (the caller owns storage). Node ``(level, index)`` is the hash of the perfect
subtree covering leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 holds leaf
hashes. Appending leaf ``n`` stores ``(0, n)`` and then, while the new node's index is odd, its
parent. Nothing else is stored, in particular no roots: every root and proof for *any* size up
to the current one is assembled from O(log n) stored nodes.

SQL callers use two steps so that each operation costs one round trip:

1. ``needed_nodes_for_*(...)`` names the ``(level, index)`` pairs an operation will read;
2. fetch them in one query and pass ``dict_getter(rows)`` as ``get`` to the compute function.

Any ``get(level, index) -> bytes`` works, e.g. a lambda over a live cursor.

The section between the ``VERIFIER`` markers depends on ``hashlib`` only and is meant to be
copied verbatim into a standalone verification script.
"""

from __future__ import annotations

import hashlib  # the only dependency of the VERIFIER section
from collections.abc import Callable, Iterable, Mapping

# ---- BEGIN VERIFIER (copy verbatim into a script that does `import hashlib`) ----------------

_HEX_DIGITS = frozenset("0123456789abcdef")


def leaf_hash(entry_hash_hex: str) -> bytes:
    """Return the RFC 9162 leaf hash SHA-256(0x00 || entry hash) of an entry's hex hash."""
    # Only the canonical form is accepted: bytes.fromhex would also take upper case and
    # whitespace, and a log should not have two spellings of the same entry.
    if len(entry_hash_hex) != 64 or not _HEX_DIGITS.issuperset(entry_hash_hex):
        raise ValueError("entry hash must be 64 lower-case hex characters")
    return hashlib.sha256(b"\x00" + bytes.fromhex(entry_hash_hex)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """Check an inclusion proof exactly as RFC 9162 §2.1.3.2 prescribes."""
    # The size is not protected by the proof: the caller must take it (and the root) from an
    # authenticated tree head, since a proof can also fit a different size of the same shape.
    if not 0 <= index < size:  # step 1
        return False
    fn, sn = index, size - 1  # step 2
    r = leaf  # step 3
    for p in path:  # step 4
        if sn == 0:  # 4a: more path elements than levels
            return False
        if fn & 1 or fn == sn:  # 4b: p is a left sibling
            r = node_hash(p, r)
            if not fn & 1:
                # fn is the last node of its level and has no right sibling there: skip up to
                # where it is a right child (or the root of the subtree).
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:  # p is a right sibling
            r = node_hash(r, p)
        fn >>= 1  # 4c
        sn >>= 1
    return sn == 0 and r == root  # step 5


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes]
) -> bool:
    """Check a consistency proof exactly as RFC 9162 §2.1.4.2 prescribes."""
    # RFC 9162 defines PROOF(m, D_n) for 0 < m < n only. The empty tree is consistent with
    # every tree but has nothing to prove, so first == 0 is rejected rather than guessed at.
    if not 0 < first <= second:
        return False
    if first == second:
        # SUBPROOF(m, D[m], true) = {}: the same tree, proven by equal roots and an empty path.
        return not path and first_root == second_root
    if not path:  # step 1
        return False
    path = list(path)
    if first & (first - 1) == 0:  # step 2: the old tree is a complete subtree of the new one
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1  # step 3
    while fn & 1:  # step 4: climb to the largest complete subtree ending at leaf first - 1
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:  # 6a
            return False
        if fn & 1 or fn == sn:  # 6b: c is a left sibling, shared by both trees
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:  # c is a right sibling that only the new tree has
            sr = node_hash(sr, c)
        fn >>= 1  # 6c
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root  # step 7


# ---- END VERIFIER ---------------------------------------------------------------------------

Node = tuple[int, int]
"""A stored node's address: (level, index)."""

Get = Callable[[int, int], bytes]
"""Reads the stored hash of node (level, index)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1)."""


# ---- appending -------------------------------------------------------------------------------


def nodes_for_append(size: int, leaf: bytes, get: Get) -> list[tuple[int, int, bytes]]:
    """Return the (level, index, hash) rows to store when leaf number ``size`` is appended."""
    return nodes_for_appends(size, [leaf], get)


def nodes_for_appends(size: int, leaves: Iterable[bytes], get: Get) -> list[tuple[int, int, bytes]]:
    """Return the rows to store when ``leaves`` are appended to a tree of ``size`` leaves."""
    _check_size(size)
    rows: list[tuple[int, int, bytes]] = []
    # Left children produced in this batch whose right sibling does not exist yet, by level.
    # Nodes of one level are produced in index order, so each level has at most one waiting
    # and memory stays O(log n); only left siblings older than the batch are read via get.
    waiting: dict[int, bytes] = {}
    for index, h in enumerate(leaves, start=size):
        level = 0
        rows.append((0, index, h))
        while index & 1:
            left = waiting.pop(level, None)
            if left is None:
                left = get(level, index - 1)
            h = node_hash(left, h)
            level += 1
            index >>= 1
            rows.append((level, index, h))
        waiting[level] = h
    return rows


def needed_nodes_for_append(size: int) -> set[Node]:
    """Return the stored nodes any append to a tree of ``size`` leaves may read."""
    # Appends only read left siblings on the tree's right edge, i.e. the perfect subtrees
    # that make up [0, size): a batch may read all of them, a single append only the ones
    # below the lowest zero bit of size (one per trailing one bit).
    _check_size(size)
    return set(_pieces(0, size))


# ---- roots and proofs ---------------------------------------------------------------------


def root(size: int, get: Get) -> bytes:
    """Return MTH of the first ``size`` leaves, reading at most log2(size) + 1 nodes."""
    _check_size(size)
    if size == 0:
        return EMPTY_ROOT
    return _subtree_hash(0, size, get)


def inclusion_proof(index: int, size: int, get: Get) -> list[bytes]:
    """Return the RFC 9162 inclusion proof PATH(index, D[size]), bottom sibling first."""
    return [_subtree_hash(lo, hi, get) for lo, hi in _inclusion_ranges(index, size)]


def consistency_proof(first: int, second: int, get: Get) -> list[bytes]:
    """Return the RFC 9162 consistency proof PROOF(first, D[second]); empty if they are equal."""
    return [_subtree_hash(lo, hi, get) for lo, hi in _consistency_ranges(first, second)]


def needed_nodes_for_root(size: int) -> set[Node]:
    """Return the stored nodes ``root(size, get)`` reads."""
    _check_size(size)
    return set(_pieces(0, size))


def needed_nodes_for_inclusion(index: int, size: int) -> set[Node]:
    """Return the stored nodes ``inclusion_proof(index, size, get)`` reads."""
    return {n for lo, hi in _inclusion_ranges(index, size) for n in _pieces(lo, hi)}


def needed_nodes_for_consistency(first: int, second: int) -> set[Node]:
    """Return the stored nodes ``consistency_proof(first, second, get)`` reads."""
    return {n for lo, hi in _consistency_ranges(first, second) for n in _pieces(lo, hi)}


def dict_getter(nodes: Mapping[Node, bytes]) -> Get:
    """Return a ``get`` reading from prefetched ``{(level, index): hash}`` rows."""

    def get(level: int, index: int) -> bytes:
        try:
            return nodes[level, index]
        except KeyError:
            raise KeyError(f"node (level={level}, index={index}) was not fetched") from None

    return get


# ---- internals ----------------------------------------------------------------------------
#
# Every range [lo, hi) that the RFC's recursion visits has lo aligned to a power of two that
# is >= hi - lo (the left part of each split is a perfect power-of-two block). Such a range
# is the concatenation of perfect aligned subtrees of strictly decreasing size, one per set
# bit of hi - lo, and its MTH is the right fold of their hashes: MTH splits at the largest
# power of two below the width, which is exactly the first piece.


def _check_size(size: int) -> None:
    if size < 0:
        raise ValueError(f"tree size must be >= 0, got {size}")


def _split(width: int) -> int:
    """Return k, the largest power of two strictly smaller than ``width`` (>= 2)."""
    return 1 << ((width - 1).bit_length() - 1)


def _pieces(lo: int, hi: int) -> list[Node]:
    """Return the perfect aligned subtrees covering [lo, hi), largest (leftmost) first."""
    nodes = []
    width = hi - lo
    while width:
        level = width.bit_length() - 1
        nodes.append((level, lo >> level))
        lo += 1 << level
        width -= 1 << level
    return nodes


def _subtree_hash(lo: int, hi: int, get: Get) -> bytes:
    """Return MTH(D[lo:hi]) for a range the RFC recursion visits, from stored pieces."""
    pieces = _pieces(lo, hi)
    h = get(*pieces[-1])
    for level, index in reversed(pieces[:-1]):
        h = node_hash(get(level, index), h)
    return h


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Return the leaf ranges whose MTHs form PATH(index, D[size]), in proof order."""
    if not 0 <= index < size:
        raise ValueError(f"need 0 <= index < size, got index={index}, size={size}")
    # Walk PATH's recursion top-down; the RFC appends each level's sibling after the deeper
    # part of the path, so the list is reversed at the end.
    ranges = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return ranges


def _consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """Return the leaf ranges whose MTHs form PROOF(first, D[second]), in proof order."""
    # RFC 9162 §2.1.4.1 defines PROOF(m, D_n) for 0 < m < n; SUBPROOF(m, D[m], true) = {}
    # gives the empty proof for m == n. Nothing is defined for m == 0.
    if not 0 < first <= second:
        raise ValueError(f"need 0 < first <= second, got first={first}, second={second}")
    # Walk SUBPROOF's recursion top-down (reversed at the end, as for PATH). `known` is the
    # RFC's flag b: true while [lo, hi) still starts at leaf 0, whose MTH the verifier has.
    ranges = []
    lo, hi, known = 0, second, True
    while first != hi:
        mid = lo + _split(hi - lo)
        if first <= mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
            known = False
    if not known:
        # SUBPROOF(m, D[m], false) = {MTH(D[m])}: the verifier cannot rebuild this subtree.
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges
