#!/usr/bin/env python3
"""Verify a Deletion Desk evidence pack or subject receipt offline: `python3 verify.py [folder]`.

Standard library only (Python 3.8+), so it runs on any machine without the desk. It checks:
- sth.json, the signed tree head: its Ed25519 signature and key id, under public_key.pem;
- entries.jsonl: each entry's hash recomputed from its content (the format in the desk's
  DESIGN.md), each one listed in the manifest and about this batch or subject;
- proofs.jsonl: exactly one inclusion proof per entry, in the same order, for the tree the
  signed head names, leading from the entry's leaf hash to the signed root (RFC 9162);
- manifest.json: its Ed25519 signature (manifest.sig), that it names this tree head and these
  entries, and the SHA-256 of every file.
It prints "ok" and a short report and exits 0, or "FAILED:" naming the first problem (then any
others) and exits 1. An RFC 3161 timestamp in sth.json is reported, not checked: the standard
library has no CMS. `python3 verify.py --tsa` writes the token and the bytes it covers for
`openssl ts -verify` (README.txt says how).

The desk hands out this file as verify.py with webapp/trail/merkle.py's VERIFIER section in
the place of the import below that stands for it, so the two can never differ.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path

MANIFEST_TYPE = "deletion-desk/evidence-manifest/v2"
# Packs issued before the transparency log carried the whole chain and checkpoints; they keep
# verifying with the verify.py inside them.
WHOLE_CHAIN_MANIFEST = "deletion-desk/evidence-manifest/v1"
# Files each kind must list in its manifest (manifest.json and manifest.sig aside).
REQUIRED = {
    "batch": ("certificate.pdf", "report.csv"),
    "subject": ("receipt.pdf",),
}
COMMON = ("README.txt", "entries.jsonl", "proofs.jsonl", "sth.json", "public_key.pem", "verify.py")
PURGE_ACTION = "retention.purged"
# DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw key is the last 32 bytes.
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")

# --- Ed25519 verification, after RFC 8032 section 6 (reference code) -------------------------

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _point_add(p, q):
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f, g * h, f * g, e * h)


def _point_mul(scalar, point):
    result = (0, 1, 1, 0)
    while scalar > 0:
        if scalar & 1:
            result = _point_add(result, point)
        point = _point_add(point, point)
        scalar >>= 1
    return result


def _point_equal(p, q):
    return (p[0] * q[2] - q[0] * p[2]) % _P == 0 and (p[1] * q[2] - q[1] * p[2]) % _P == 0


def _recover_x(y, sign):
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _decompress(data):
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


_G_Y = 4 * pow(5, _P - 2, _P) % _P
_G_X = _recover_x(_G_Y, 0)
_G = (_G_X, _G_Y, 1, _G_X * _G_Y % _P)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `message` under `public_key`."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a_point = _decompress(public_key)
    r_point = _decompress(signature[:32])
    if a_point is None or r_point is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    digest = hashlib.sha512(signature[:32] + public_key + message).digest()
    h = int.from_bytes(digest, "little") % _L
    return _point_equal(_point_mul(s, _G), _point_add(r_point, _point_mul(h, a_point)))


def public_key_from_pem(text: str) -> bytes:
    """The raw 32-byte key of an Ed25519 public key in PEM (SubjectPublicKeyInfo)."""
    body = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body)
    if len(der) != 44 or not der.startswith(ED25519_SPKI_PREFIX):
        raise ValueError("public_key.pem is not an Ed25519 public key")
    return der[len(ED25519_SPKI_PREFIX) :]


def key_id(public_key: bytes) -> str:
    """The key's fingerprint as the desk shows it: SHA-256 of the raw public key, hex."""
    return hashlib.sha256(public_key).hexdigest()


# --- entries, proofs and the signed tree head (formats in the desk's DESIGN.md) ------------

# ---- BEGIN VERIFIER: each verify.py carries webapp/trail/merkle.py's section here instead
from webapp.trail.merkle import leaf_hash, verify_inclusion  # noqa: E402

# ---- END VERIFIER ---------------------------------------------------------------------------


def canonical_json(value) -> str:
    """Sorted keys, separators (",", ":"), UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(entry: dict) -> str:
    """Hex SHA-256 of the entry without its `hash`, serialised canonically."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def sth_message(sth: dict) -> bytes:
    """The exact bytes a tree head's signature (and its RFC 3161 timestamp) cover."""
    fields = ("root_hash", "timestamp", "tree_size")
    return canonical_json({name: sth[name] for name in fields}).encode("utf-8")


def proof_problem(entry: dict, proof: dict, tree_size: int, root: bytes) -> str | None:
    """Why `proof` does not prove `entry` in the tree of `tree_size` with `root` (None: it does)."""
    seq = entry["seq"]
    if proof.get("tree_size") != tree_size:
        return (
            f"the proof of entry {seq} is for a tree of {proof.get('tree_size')} entries, "
            f"not the {tree_size} of the signed tree head"
        )
    if proof.get("leaf_index") != seq - 1:
        return f"the proof of entry {seq} names leaf {proof.get('leaf_index')}, not {seq - 1}"
    try:
        leaf = leaf_hash(entry["hash"])
        path = [bytes.fromhex(node) for node in proof["path"]]
    except (KeyError, TypeError, ValueError):
        return f"the proof of entry {seq} cannot be read"
    if proof.get("leaf_hash") != leaf.hex():
        return f"the proof of entry {seq} is for another leaf (its leaf_hash is not the entry's)"
    if not verify_inclusion(leaf, seq - 1, tree_size, path, root):
        return f"the proof of entry {seq} does not lead to the signed root"
    return None


def concerns(entry: dict, manifest: dict) -> bool:
    """True when an entry is about what the manifest proves: a target it lists, or a purge of
    its batch."""
    targets = manifest.get("targets") or {}
    if entry.get("target_id") in targets.get(entry.get("target_type") or "", []):
        return True
    batch_id = (manifest.get("batch") or {}).get("id")
    details = entry.get("details") or {}
    return entry.get("action") == PURGE_ACTION and batch_id in (details.get("batch_ids") or [])


# --- the pack ------------------------------------------------------------------------------


class Pack:
    """One unzipped evidence pack or receipt, and what checking it found."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.problems: list[str] = []
        self.facts: list[str] = []

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def path(self, name: str) -> Path | None:
        path = self.folder / name
        if not path.is_file():
            self.problem(f"{name} is missing")
            return None
        return path

    def check(self) -> bool:
        """Run every check; True when nothing is wrong."""
        manifest, public_key = self.check_manifest()
        if manifest is None:
            return False
        sth = self.check_sth(manifest, public_key)
        if sth is not None:
            self.check_entries(manifest, sth)
        self.check_files(manifest)
        return not self.problems

    def check_manifest(self):
        """The manifest, signed by public_key.pem: (manifest, raw key), or (None, None)."""
        paths = [self.path(n) for n in ("manifest.json", "manifest.sig", "public_key.pem")]
        if None in paths:
            return None, None
        manifest_bytes = paths[0].read_bytes()
        try:
            manifest = json.loads(manifest_bytes)
            signature = bytes.fromhex(paths[1].read_text("ascii").strip())
            public_key = public_key_from_pem(paths[2].read_text("ascii"))
        except (ValueError, UnicodeDecodeError) as error:
            self.problem(f"the manifest, its signature or the public key cannot be read: {error}")
            return None, None
        kind = manifest.get("type") if isinstance(manifest, dict) else None
        if kind == WHOLE_CHAIN_MANIFEST:
            self.problem(
                "this pack was issued before the desk's transparency log: it carries the whole "
                "chain. Verify it with the verify.py it came with."
            )
            return None, None
        if kind != MANIFEST_TYPE or manifest.get("kind") not in REQUIRED:
            self.problem("manifest.json is not a Deletion Desk evidence manifest")
            return None, None
        if not ed25519_verify(public_key, manifest_bytes, signature):
            self.problem(
                "manifest.sig: the signature of manifest.json does not verify (the manifest "
                "was altered, or signed by another key)"
            )
        if manifest.get("key_id") != key_id(public_key):
            self.problem("public_key.pem is not the key manifest.json names")
        return manifest, public_key

    def check_sth(self, manifest: dict, public_key: bytes) -> dict | None:
        """The signed tree head: signed by the key, and the one the manifest names."""
        path = self.path("sth.json")
        if path is None:
            return None
        try:
            sth = json.loads(path.read_bytes())
            message = sth_message(sth)
            signature = base64.b64decode(sth["signature"], validate=True)
            sth["root"] = bytes.fromhex(sth["root_hash"])
        except (KeyError, TypeError, ValueError):
            self.problem("sth.json is not a signed tree head")
            return None
        if not ed25519_verify(public_key, message, signature):
            self.problem(
                "sth.json: the signature of the tree head does not verify (its size, root or "
                "time was altered)"
            )
        if sth.get("key_id") != key_id(public_key):
            self.problem("sth.json is signed by another key than public_key.pem")
        named = manifest.get("sth") or {}
        if any(named.get(f) != sth.get(f) for f in ("tree_size", "root_hash", "timestamp")):
            self.problem("sth.json is not the tree head manifest.json names")
        return sth

    def check_entries(self, manifest: dict, sth: dict) -> None:
        """Each entry intact, listed, about the evidence, and proven in the signed tree."""
        entries = self.numbered("entries.jsonl", "an entry")
        proofs = self.numbered("proofs.jsonl", "a proof")
        listed = [seq for seq in manifest.get("entries") or [] if isinstance(seq, int)]
        seqs = [entry["seq"] for entry in entries]
        missing, extra = set(listed) - set(seqs), set(seqs) - set(listed)
        if missing:
            first = next(seq for seq in listed if seq in missing)
            self.problem(f"entries.jsonl: entry {first} is missing (manifest.json lists it)")
        if extra:
            first = next(seq for seq in seqs if seq in extra)
            self.problem(f"entries.jsonl: entry {first} is not one manifest.json lists")
        if not missing and not extra and seqs != listed:
            self.problem("entries.jsonl: the entries are not in the order manifest.json lists")
        subject = self.subject_of(manifest)
        for entry in entries:
            if entry_hash(entry) != entry.get("hash"):
                self.problem(f"entries.jsonl: entry {entry['seq']} was altered")
            elif not concerns(entry, manifest):
                self.problem(f"entries.jsonl: entry {entry['seq']} is not about {subject}")
        self.check_proofs(entries, proofs, sth)
        if entries and not self.problems:
            self.facts.append(
                f"{len(entries)} audit entries about {subject} (seq {seqs[0]} to {seqs[-1]}): "
                "each one's hash recomputed, each one proven in the signed tree (RFC 9162)"
            )

    def check_proofs(self, entries: list, proofs: list, sth: dict) -> None:
        """Exactly one proof per entry, in the entries' order, each leading to the root."""
        seqs, order = [entry["seq"] for entry in entries], [proof["seq"] for proof in proofs]
        count: dict = {}
        for seq in order:
            count[seq] = count.get(seq, 0) + 1
        for seq in seqs:
            if count.get(seq, 0) != 1:
                self.problem(f"proofs.jsonl: entry {seq} has {count.get(seq, 0)} proofs, not one")
        for seq in sorted(set(order) - set(seqs)):
            self.problem(f"proofs.jsonl: a proof of entry {seq}, which entries.jsonl lacks")
        if sorted(order) == sorted(seqs) and order != seqs:
            place = next(i for i, seq in enumerate(seqs) if order[i] != seq)
            self.problem(
                f"proofs.jsonl: the proof of entry {order[place]} stands where entry "
                f"{seqs[place]}'s belongs (the proofs are not in the order of the entries)"
            )
        by_seq = {proof["seq"]: proof for proof in proofs}
        failed = []
        for entry in entries:
            proof = by_seq.get(entry["seq"])
            found = proof and proof_problem(entry, proof, sth["tree_size"], sth["root"])
            if found:
                failed.append(found)
        if failed:
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            self.problem(f"proofs.jsonl: {failed[0]}{more}")

    def numbered(self, name: str, what: str) -> list:
        """The objects of a JSON Lines file that carry a seq (a problem for any that does not)."""
        found = []
        for value in self.jsonl(name):
            if isinstance(value.get("seq"), int) and not isinstance(value["seq"], bool):
                found.append(value)
            else:
                self.problem(f"{name}: {what} without a seq (altered)")
        return found

    def check_files(self, manifest: dict) -> None:
        """Every file the evidence needs is listed, and still has its SHA-256 at issue."""
        files = manifest.get("files") or {}
        for name in COMMON + REQUIRED[manifest["kind"]]:
            if name not in files:
                self.problem(f"manifest.json does not list {name}")
        for name, digest in sorted(files.items()):
            path = self.path(name)
            if path is None:
                continue
            sha = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    sha.update(block)
            if sha.hexdigest() != digest:
                self.problem(f"{name} was changed: its SHA-256 is not the one in manifest.json")

    def subject_of(self, manifest: dict) -> str:
        """What the evidence is about, in a few words."""
        if manifest["kind"] == "subject":
            fingerprint = str((manifest.get("subject") or {}).get("fingerprint"))
            return f"subject {fingerprint[:16]}…"
        return f"batch {(manifest.get('batch') or {}).get('id')}"

    def jsonl(self, name: str):
        """The objects of a JSON Lines file, one line at a time."""
        path = self.path(name)
        if path is None:
            return
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    value = json.loads(raw.decode("utf-8"))
                except ValueError:
                    if raw.strip():
                        self.problem(f"{name}: line {number} is not valid JSON (altered)")
                    continue
                if isinstance(value, dict):
                    yield value
                else:
                    self.problem(f"{name}: line {number} is not a JSON object (altered)")


def report(pack: Pack, manifest: dict, sth: dict) -> list[str]:
    """The lines printed after "ok"."""
    if manifest["kind"] == "subject":
        title = f"receipt of one data subject, fingerprint {manifest['subject']['fingerprint']}"
    else:
        title = f"evidence pack of batch {manifest['batch']['id']}"
    lines = [
        title,
        f"signed tree head: {sth['tree_size']} entries, root {sth['root_hash']}, signed "
        f"{sth['timestamp']} by key {sth['key_id']}",
        *pack.facts,
        f"manifest.json is signed by the same key; {len(manifest['files'])} files as issued "
        "(SHA-256 match)",
    ]
    if sth.get("tsa_token"):
        lines.append(
            "sth.json carries an RFC 3161 timestamp (tsa_token): Python's standard library "
            "cannot check it; `openssl ts -verify` does (python3 verify.py --tsa, then README.txt)"
        )
    lines.append(
        "Compare the key id above with the one the desk publishes (GET /api/v1/audit/public-key)"
        ": the signatures prove authorship only under a key you got from the desk itself."
    )
    return lines


def write_timestamp_files(folder: Path) -> int:
    """`--tsa`: write the RFC 3161 token and the bytes it covers, for `openssl ts -verify`."""
    sth = json.loads((folder / "sth.json").read_bytes())
    if not sth.get("tsa_token"):
        print("sth.json carries no RFC 3161 timestamp (the desk was not set up with one)")
        return 1
    (folder / "sth.tst").write_bytes(base64.b64decode(sth["tsa_token"]))
    (folder / "sth.msg").write_bytes(sth_message(sth))
    print("wrote sth.tst (the time-stamp token) and sth.msg (the bytes it covers); now run")
    print("  openssl ts -verify -token_in -in sth.tst -data sth.msg -CAfile TSA-CA.pem")
    return 0


def main(argv: list[str]) -> int:
    """Check the pack in the folder given (default: this script's folder)."""
    args = [arg for arg in argv[1:] if arg != "--tsa"]
    folder = Path(args[0]) if args else Path(__file__).resolve().parent
    if "--tsa" in argv:
        return write_timestamp_files(folder)
    pack = Pack(folder)
    if pack.check():
        manifest = json.loads((folder / "manifest.json").read_bytes())
        sth = json.loads((folder / "sth.json").read_bytes())
        print("ok")
        for line in report(pack, manifest, sth):
            print(f"  {line}")
        return 0
    print(f"FAILED: {pack.problems[0]}")
    for problem in pack.problems[1:]:
        print(f"  - {problem}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
