"""Tests for merkle.py against a literal transcription of RFC 9162 §2.1 and published vectors."""

from __future__ import annotations

import hashlib
import math
import pathlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webapp.trail import merkle

# ---- reference implementation: RFC 9162 §2.1.1-2.1.4 recursive definitions over lists ---------
# Written from the RFC text with its own hashing, independently of merkle.py. The inputs are
# entry data d(i); MTH({d(0)}) = HASH(0x00 || d(0)) makes the leaves exactly what merkle.py
# stores when d(i) = bytes.fromhex(entry hash).


def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def _k(n: int) -> int:
    """Largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + d[0])
    k = _k(n)
    return _h(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


# ---- fixtures ----------------------------------------------------------------------------------

MAX_N = 5000
# Entry "hashes" as raw bytes; leaves are HASH(0x00 || data) as in the audit log.
DATA = [_h(b"entry %d" % i) for i in range(2 * MAX_N + 2)]
LEAVES = [_h(b"\x00" + x) for x in DATA]


def build_store(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    store: dict[tuple[int, int], bytes] = {}
    for level, index, h in merkle.nodes_for_appends(0, leaves, lambda lv, ix: store[lv, ix]):
        store[level, index] = h
    return store


# One store serves every size: proofs for size n read only nodes inside [0, n).
STORE = build_store(LEAVES)
GET = merkle.dict_getter(STORE)


class CountingGet:
    """A get that records which nodes were read."""

    def __init__(self, store):
        self.store = store
        self.calls: list[tuple[int, int]] = []

    def __call__(self, level: int, index: int) -> bytes:
        self.calls.append((level, index))
        return self.store[level, index]


def flip(b: bytes, pos: int = 0) -> bytes:
    return b[:pos] + bytes([b[pos] ^ 0x10]) + b[pos + 1 :]


# ---- hashing primitives ------------------------------------------------------------------------


def test_leaf_hash():
    entry = hashlib.sha256(b"some audit entry").hexdigest()
    assert merkle.leaf_hash(entry) == _h(b"\x00" + bytes.fromhex(entry))
    assert merkle.leaf_hash("00" * 32).hex() == _h(b"\x00" * 33).hex()
    for bad in [
        "",
        "00" * 31,
        "00" * 33,
        entry.upper(),
        " " + entry[1:],
        "g" * 64,
        entry[:-2] + " 0",
    ]:
        with pytest.raises(ValueError):
            merkle.leaf_hash(bad)


def test_node_hash():
    a, b = _h(b"a"), _h(b"b")
    assert merkle.node_hash(a, b) == _h(b"\x01" + a + b)
    assert merkle.node_hash(a, b) != merkle.node_hash(b, a)


def test_empty_root():
    assert merkle.root(0, GET).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert merkle.needed_nodes_for_root(0) == set()


# ---- published RFC 6962 / 9162 vectors -----------------------------------------------------------
# Source: transparency-dev/merkle, proof/verify_test.go (commit 02194e9a), the same data as
# google/certificate-transparency's C++ merkle tree tests. Leaves are raw data hashed with the
# 0x00 prefix; the Go vectors number inclusion leaves from 1, converted to 0-based here.

CT_DATA = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # size 0
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",  # size 8
]
CT_INCLUSION = [  # (0-based index, size, PATH)
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [  # (first, second, PROOF)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
CT_LEAVES = [_h(b"\x00" + d) for d in CT_DATA]
CT_GET = merkle.dict_getter(build_store(CT_LEAVES))


@pytest.mark.parametrize("size", range(9))
def test_ct_roots(size):
    assert merkle.root(size, CT_GET).hex() == CT_ROOTS[size]
    assert ref_mth(CT_DATA[:size]).hex() == CT_ROOTS[size]


@pytest.mark.parametrize("index,size,path", CT_INCLUSION)
def test_ct_inclusion(index, size, path):
    proof = merkle.inclusion_proof(index, size, CT_GET)
    assert [p.hex() for p in proof] == path
    root = bytes.fromhex(CT_ROOTS[size])
    leaf = CT_LEAVES[index]
    assert merkle.verify_inclusion(leaf, index, size, proof, root)
    # The corruption probes of transparency-dev's verifierCheck, all of which must fail.
    some = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    probes = [
        (leaf, index - 1, size, proof, root),
        (leaf, index + 1, size, proof, root),
        (leaf, index ^ 2, size, proof, root),
        (leaf, index, size * 2, proof, root),
        (leaf, index, size // 2, proof, root),
        (b"WrongLeaf", index, size, proof, root),
        (leaf, index, size, proof, bytes.fromhex(CT_ROOTS[0])),
        (leaf, index, size, proof, some),
        (leaf, index, size, proof + [b""], root),
        (leaf, index, size, proof + [root], root),
        (leaf, index, size, [b""] + proof, root),
        (leaf, index, size, [root] + proof, root),
    ]
    probes += [
        (leaf, index, size, proof[:i] + [flip(p)] + proof[i + 1 :], root)
        for i, p in enumerate(proof)
    ]
    if proof:
        probes.append((leaf, index, size, proof[:-1], root))
    if len(proof) > 1:
        probes.append((leaf, index, size, [proof[0], some] + proof[1:], root))
    for probe in probes:
        assert not merkle.verify_inclusion(*probe), probe[1:3]


@pytest.mark.parametrize("first,second,path", CT_CONSISTENCY)
def test_ct_consistency(first, second, path):
    proof = merkle.consistency_proof(first, second, CT_GET)
    assert [p.hex() for p in proof] == path
    r1, r2 = bytes.fromhex(CT_ROOTS[first]), bytes.fromhex(CT_ROOTS[second])
    assert merkle.verify_consistency(first, second, r1, r2, proof)
    if not proof:
        return
    # The corruption probes of transparency-dev's verifierConsistencyCheck.
    probes = [
        (first - 1, second, r1, r2, proof),
        (first + 1, second, r1, r2, proof),
        (first ^ 2, second, r1, r2, proof),
        (first, second * 2, r1, r2, proof),
        (first, second // 2, r1, r2, proof),
        (first, second, b"WrongRoot", r2, proof),
        (first, second, r1, b"WrongRoot", proof),
        (first, second, r2, r1, proof),
        (first, second, r1, r2, []),
        (first, second, r1, r2, proof + [b""]),
        (first, second, r1, r2, proof + [r1]),
        (first, second, r1, r2, proof + [r2]),
        (first, second, r1, r2, [b""] + proof),
        (first, second, r1, r2, [r1] + proof),
        (first, second, r1, r2, [r2] + proof),
        (first, second, r1, r2, [proof[0]] + proof),
        (first, second, r1, r2, proof[:-1]),
    ]
    probes += [
        (first, second, r1, r2, proof[:i] + [flip(p)] + proof[i + 1 :]) for i, p in enumerate(proof)
    ]
    for probe in probes:
        assert not merkle.verify_consistency(*probe), probe[:2]


def test_ct_trivial_consistency_cases():
    r1, r2 = b"don't care 1", b"don't care 2"
    empty = bytes.fromhex(CT_ROOTS[0])
    assert merkle.verify_consistency(1, 1, r2, r2, [])
    assert not merkle.verify_consistency(1, 1, r1, r2, [])
    assert not merkle.verify_consistency(1, 1, empty, empty, [empty])
    assert not merkle.verify_consistency(1, 0, r1, r2, [])  # time travel
    assert not merkle.verify_consistency(2, 1, r1, r2, [])
    assert not merkle.verify_consistency(1, 2, r1, r2, [])  # empty proof for m < n
    # RFC 9162 defines proofs for 0 < m only; the empty tree is rejected, not special-cased
    # (transparency-dev instead accepts (0, n) with an empty proof).
    assert not merkle.verify_consistency(0, 0, empty, empty, [])
    assert not merkle.verify_consistency(0, 1, empty, r2, [])


# ---- agreement with the reference ----------------------------------------------------------


def test_roots_every_size_up_to_300_with_single_appends():
    store: dict[tuple[int, int], bytes] = {}
    for n in range(300):
        rows = merkle.nodes_for_append(n, LEAVES[n], lambda lv, ix: store[lv, ix])
        # Leaf n adds itself plus one parent per trailing one bit of n.
        assert len(rows) == 1 + (n ^ (n + 1)).bit_length() - 1
        for level, index, h in rows:
            assert (level, index) not in store
            store[level, index] = h
        get = merkle.dict_getter(store)
        assert merkle.root(n + 1, get) == ref_mth(DATA[: n + 1]), n + 1
    assert store == {k: v for k, v in STORE.items() if (k[1] + 1) << k[0] <= 300}
    # 2n - popcount(n) rows in total: amortised two per append.
    assert len(store) == 2 * 300 - (300).bit_count()


@pytest.mark.parametrize("n", range(1, 41))
def test_all_proofs_exhaustively_for_small_trees(n):
    d = DATA[:n]
    r = ref_mth(d)
    for i in range(n):
        proof = merkle.inclusion_proof(i, n, GET)
        assert proof == ref_path(i, d)
        assert merkle.verify_inclusion(LEAVES[i], i, n, proof, r)
        for j in range(n):
            if j != i:
                assert not merkle.verify_inclusion(LEAVES[i], j, n, proof, r)
    for m in range(1, n + 1):
        proof = merkle.consistency_proof(m, n, GET)
        assert proof == ref_proof(m, d)
        assert merkle.verify_consistency(m, n, ref_mth(d[:m]), r, proof)


@st.composite
def size_and_index(draw, max_n=MAX_N):
    n = draw(st.integers(1, max_n))
    return n, draw(st.integers(0, n - 1))


@st.composite
def size_pair(draw, max_n=MAX_N):
    n = draw(st.integers(2, max_n))
    return draw(st.integers(1, n - 1)), n


HYP = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYP
@given(size_and_index())
def test_inclusion_matches_reference_and_resists_tampering(args):
    i, n = args[1], args[0]
    d = DATA[:n]
    r = ref_mth(d)
    assert merkle.root(n, GET) == r
    proof = merkle.inclusion_proof(i, n, GET)
    assert proof == ref_path(i, d)
    leaf = LEAVES[i]
    assert merkle.verify_inclusion(leaf, i, n, proof, r)

    bad = [flip(p, 31) for p in proof]
    for k in range(len(proof)):
        assert not merkle.verify_inclusion(leaf, i, n, proof[:k] + [bad[k]] + proof[k + 1 :], r)
    if proof:
        assert not merkle.verify_inclusion(leaf, i, n, proof[:-1], r)
        assert not merkle.verify_inclusion(leaf, i, n, proof[1:], r)
    assert not merkle.verify_inclusion(leaf, i, n, proof + [r], r)
    assert not merkle.verify_inclusion(leaf, i, n, [r] + proof, r)
    assert not merkle.verify_inclusion(flip(leaf), i, n, proof, r)
    assert not merkle.verify_inclusion(leaf, i, n, proof, flip(r))
    for j in {i - 1, i + 1, i ^ 1, i ^ 2, n}:
        if j != i:
            assert not merkle.verify_inclusion(leaf, j, n, proof, r)
    # Wrong size against that size's true root: only the genuine proof may verify.
    for n2 in {n - 1, n + 1, 2 * n, n // 2}:
        if n2 > i and n2 != n:
            ok = merkle.verify_inclusion(leaf, i, n2, proof, ref_mth(DATA[:n2]))
            assert ok == (proof == ref_path(i, DATA[:n2]))


@HYP
@given(size_pair())
def test_consistency_matches_reference_and_resists_tampering(args):
    m, n = args
    r1, r2 = ref_mth(DATA[:m]), ref_mth(DATA[:n])
    proof = merkle.consistency_proof(m, n, GET)
    assert proof == ref_proof(m, DATA[:n])
    assert merkle.verify_consistency(m, n, r1, r2, proof)
    assert merkle.consistency_proof(n, n, GET) == []
    assert merkle.verify_consistency(n, n, r2, r2, [])

    for k in range(len(proof)):
        tampered = proof[:k] + [flip(proof[k], 7)] + proof[k + 1 :]
        assert not merkle.verify_consistency(m, n, r1, r2, tampered)
    assert not merkle.verify_consistency(m, n, r1, r2, proof[:-1])
    assert not merkle.verify_consistency(m, n, r1, r2, proof[1:])
    assert not merkle.verify_consistency(m, n, r1, r2, proof + [r2])
    assert not merkle.verify_consistency(m, n, r1, r2, [proof[0]] + proof)
    assert not merkle.verify_consistency(m, n, r2, r1, proof)  # swapped roots
    assert not merkle.verify_consistency(n, m, r1, r2, proof)  # swapped sizes
    assert not merkle.verify_consistency(m, n, flip(r1), r2, proof)
    assert not merkle.verify_consistency(m, n, r1, flip(r2), proof)
    # Wrong sizes against their true roots: only a genuine proof may verify.
    for m2, n2 in {(m - 1, n), (m + 1, n), (m ^ 2, n), (m, n + 1), (m, n - 1), (m, 2 * n)}:
        if 0 < m2 <= n2 and (m2, n2) != (m, n):
            ok = merkle.verify_consistency(m2, n2, ref_mth(DATA[:m2]), ref_mth(DATA[:n2]), proof)
            assert ok == (proof == ref_proof(m2, DATA[:n2]))


def test_inclusion_proof_does_not_bind_the_tree_size():
    # RFC 9162 behaviour worth knowing: PATH(0, D[3]) also verifies as a size-4 proof against
    # the size-3 root, because both shapes fold identically. Sizes and roots must come from
    # an authenticated (signed) tree head, never from the proof's sender alone.
    r3 = merkle.root(3, GET)
    proof = merkle.inclusion_proof(0, 3, GET)
    assert merkle.verify_inclusion(LEAVES[0], 0, 3, proof, r3)
    assert merkle.verify_inclusion(LEAVES[0], 0, 4, proof, r3)


# ---- storage access ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(size_and_index(max_n=2 * MAX_N), size_pair(max_n=2 * MAX_N))
def test_needed_nodes_are_exactly_the_nodes_read(incl, cons):
    n, i = incl
    m, n2 = cons
    cases = [
        (merkle.needed_nodes_for_root(n), lambda g: merkle.root(n, g)),
        (merkle.needed_nodes_for_inclusion(i, n), lambda g: merkle.inclusion_proof(i, n, g)),
        (
            merkle.needed_nodes_for_consistency(m, n2),
            lambda g: merkle.consistency_proof(m, n2, g),
        ),
    ]
    for needed, compute in cases:
        get = CountingGet(STORE)
        expected = compute(get)
        assert sorted(get.calls) == sorted(needed)  # each needed node read exactly once
        # A SQL caller fetches exactly `needed` in one query and computes from that.
        fetched = {node: STORE[node] for node in needed}
        assert compute(merkle.dict_getter(fetched)) == expected
        # Only nodes inside the tree are ever needed, so any past size can be served.
        assert all((index + 1) << level <= max(n, n2) for level, index in needed)


def test_batch_append_reads_only_older_frontier_nodes():
    rnd = random.Random(7)
    store: dict[tuple[int, int], bytes] = {}
    size = 0
    while size < 3000:
        count = rnd.choice([1, 2, 3, 5, 64, 100, 257])
        get = CountingGet(store)
        rows = merkle.nodes_for_appends(size, LEAVES[size : size + count], get)
        produced = {(lv, ix) for lv, ix, _ in rows}
        # Never reads a node it produced itself, and reads each frontier node at most once.
        assert not produced & set(get.calls)
        assert len(get.calls) == len(set(get.calls))
        assert set(get.calls) <= merkle.needed_nodes_for_append(size)
        # Same rows as appending one at a time.
        single: list[tuple[int, int, bytes]] = []
        scratch = dict(store)
        for k in range(count):
            new = merkle.nodes_for_append(size + k, LEAVES[size + k], merkle.dict_getter(scratch))
            scratch.update({(lv, ix): h for lv, ix, h in new})
            single += new
        assert rows == single
        store.update({(lv, ix): h for lv, ix, h in rows})
        size += count
    assert store == {k: v for k, v in STORE.items() if (k[1] + 1) << k[0] <= size}
    assert merkle.nodes_for_appends(size, [], None) == []


def test_get_calls_are_logarithmic_for_all_small_sizes():
    for n in range(1, 600):
        bound = 2 * math.ceil(math.log2(n)) + 1 if n > 1 else 1
        assert len(merkle.needed_nodes_for_root(n)) <= math.ceil(math.log2(n)) + 1
        for i in range(0, n, 7):
            assert len(merkle.needed_nodes_for_inclusion(i, n)) <= bound, (i, n)
        for m in range(1, n + 1, 5):
            assert len(merkle.needed_nodes_for_consistency(m, n)) <= bound, (m, n)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        merkle.root(-1, GET)
    for i, n in [(0, 0), (3, 3), (-1, 3), (5, 3)]:
        with pytest.raises(ValueError):
            merkle.inclusion_proof(i, n, GET)
        with pytest.raises(ValueError):
            merkle.needed_nodes_for_inclusion(i, n)
        assert not merkle.verify_inclusion(LEAVES[0], i, n, [], LEAVES[0])
    for m, n in [(0, 5), (0, 0), (6, 5), (-1, 5)]:
        with pytest.raises(ValueError):
            merkle.consistency_proof(m, n, GET)
        with pytest.raises(ValueError):
            merkle.needed_nodes_for_consistency(m, n)
    with pytest.raises(ValueError):
        merkle.nodes_for_appends(-1, [LEAVES[0]], GET)
    with pytest.raises(KeyError, match="not fetched"):
        merkle.root(5, merkle.dict_getter({}))


def test_verifier_section_runs_standalone():
    # The section between the markers is what gets pasted into the standalone script.
    src = pathlib.Path(merkle.__file__).read_text()
    section = src.split("# ---- BEGIN VERIFIER")[1].split("# ---- END VERIFIER")[0]
    section = section.split("\n", 1)[1]  # drop the rest of the marker line
    namespace: dict = {}
    exec("import hashlib\n" + section, namespace)  # noqa: S102 - our own source
    assert set(namespace) >= {"leaf_hash", "node_hash", "verify_inclusion", "verify_consistency"}
    n, i, m = 1234, 1000, 777
    r = merkle.root(n, GET)
    assert namespace["verify_inclusion"](LEAVES[i], i, n, merkle.inclusion_proof(i, n, GET), r)
    assert namespace["verify_consistency"](
        m, n, merkle.root(m, GET), r, merkle.consistency_proof(m, n, GET)
    )
    entry = DATA[5].hex()
    assert namespace["leaf_hash"](entry) == LEAVES[5]


# ---- large tree --------------------------------------------------------------------------------

BIG = 200_003  # not a power of two; 18 bits, several set (timings: make bench)


@pytest.fixture(scope="module")
def big_store():
    # Built in chunks, as the migration builds the tree of an existing trail.
    store: dict[int, bytes] = {}

    def get(level: int, index: int) -> bytes:
        return store[level << 40 | index]

    chunk = 100_000
    for start in range(0, BIG, chunk):
        leaves = [_h(b"\x00" + _h(b"big %d" % i)) for i in range(start, min(start + chunk, BIG))]
        for level, index, h in merkle.nodes_for_appends(start, leaves, get):
            store[level << 40 | index] = h
    assert len(store) == 2 * BIG - BIG.bit_count()
    return get


class _Counter:
    def __init__(self, get):
        self.get, self.n = get, 0

    def __call__(self, level, index):
        self.n += 1
        return self.get(level, index)


def test_large_tree_reads_logarithmic_nodes(big_store):
    rnd = random.Random(1)
    limit = 2 * math.ceil(math.log2(BIG)) + 2  # 42
    g = _Counter(big_store)
    r = merkle.root(BIG, g)
    assert g.n == BIG.bit_count()
    worst = 0
    for _ in range(50):
        i = rnd.randrange(BIG)
        g = _Counter(big_store)
        proof = merkle.inclusion_proof(i, BIG, g)
        assert merkle.verify_inclusion(big_store(0, i), i, BIG, proof, r)
        worst = max(worst, g.n)

        m = rnd.randrange(1, BIG)
        g = _Counter(big_store)
        proof = merkle.consistency_proof(m, BIG, g)
        assert merkle.verify_consistency(m, BIG, merkle.root(m, big_store), r, proof)
        worst = max(worst, g.n)
    # Worst shapes: the last leaf and first = second - 1.
    for compute in (
        lambda g: merkle.inclusion_proof(BIG - 1, BIG, g),
        lambda g: merkle.consistency_proof(BIG - 1, BIG, g),
        lambda g: merkle.consistency_proof(1, BIG, g),
        lambda g: merkle.consistency_proof((1 << 17) + 1, BIG, g),
    ):
        g = _Counter(big_store)
        compute(g)
        worst = max(worst, g.n)
    assert worst <= limit
