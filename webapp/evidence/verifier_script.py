#!/usr/bin/env python3
"""Verify a Deletion Desk evidence pack offline: `python3 verify.py [folder]`.

Standard library only (Python 3.8+), so it runs on any machine without the desk. It checks:
the Ed25519 signature of manifest.json, the SHA-256 of every file the manifest lists, the hash
chain of audit.jsonl from seq 1 to the head stated in the manifest, every signed checkpoint
(signature, and that the chain still extends it), and that the batch's entries are in the
chain. It prints "ok" and exits 0, or names every problem found and exits 1.

The desk ships this very file as verify.py in each pack and uses its checkpoint rules itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path

GENESIS_HASH = "0" * 64
CHECKPOINT_TYPE = "deletion-desk/audit-checkpoint/v1"
MANIFEST_TYPE = "deletion-desk/evidence-manifest/v1"
CHECKPOINT_ACTION = "audit.checkpoint_signed"
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


# --- the audit chain (format fixed by the desk's DESIGN.md) ----------------------------------


def canonical_json(value) -> str:
    """Sorted keys, separators (",", ":"), UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(entry: dict) -> str:
    """Hex SHA-256 of the entry without its `hash`, serialised canonically."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def checkpoint_message(seq: int, head_hash: str, at: str) -> bytes:
    """The exact bytes a checkpoint's signature covers."""
    body = {"type": CHECKPOINT_TYPE, "seq": seq, "hash": head_hash, "at": at}
    return canonical_json(body).encode("utf-8")


def check_checkpoints(checkpoints, entries, recorded, chain_end, trusted_key_hex, verify):
    """Problems with signed checkpoints, as plain sentences (an empty list when all is well).

    `checkpoints`: dicts (seq, hash, at, signature, key_id, public_key) in seq order;
    `entries`: {seq: entry} holding at least each checkpoint's seq and seq + 1;
    `recorded`: the chain's `audit.checkpoint_signed` entries; `chain_end`: its last seq;
    `verify(public_key, message, signature) -> bool`. Each checkpoint must verify under its own
    key and the latest must be signed by the trusted key: earlier keys (before a rotation) are
    then vouched for by the chain that the latest checkpoint pins.
    """
    problems = []
    listed = set()
    for cp in checkpoints:
        seq, name = cp["seq"], f"checkpoint at seq {cp['seq']}"
        listed.add(seq)
        public_key = bytes.fromhex(cp["public_key"])
        message = checkpoint_message(seq, cp["hash"], cp["at"])
        if key_id(public_key) != cp["key_id"]:
            problems.append(f"{name}: its key id does not match its public key")
        if not verify(public_key, message, bytes.fromhex(cp["signature"])):
            problems.append(f"{name}: the signature does not verify (the checkpoint was altered)")
        if seq > chain_end:
            problems.append(
                f"{name}: the chain ends at seq {chain_end}, before the signed head: "
                "entries were removed from its end (truncated)"
            )
            continue
        entry = entries.get(seq)
        if entry is None or entry.get("hash") != cp["hash"]:
            problems.append(
                f"{name}: the chain no longer extends it (entry {seq} differs from the signed "
                "head: the trail was rewritten)"
            )
        note = entries.get(seq + 1)
        if note is not None and not _records(note, cp):
            problems.append(f"{name}: entry {seq + 1} does not record it as signed")
    for entry in recorded:
        details = entry.get("details") or {}
        if details.get("seq") not in listed:
            problems.append(
                f"entry {entry.get('seq')} records a checkpoint at seq {details.get('seq')} "
                "that is missing from the checkpoints"
            )
    if checkpoints and checkpoints[-1]["public_key"] != trusted_key_hex:
        problems.append(
            f"the latest checkpoint (seq {checkpoints[-1]['seq']}) is signed by key "
            f"{checkpoints[-1]['key_id'][:16]}…, not by the trusted key "
            f"{key_id(bytes.fromhex(trusted_key_hex))[:16]}…"
        )
    return problems


def _records(entry: dict, cp: dict) -> bool:
    details = entry.get("details") or {}
    fields = ("seq", "hash", "at", "signature", "public_key")
    return entry.get("action") == CHECKPOINT_ACTION and all(details.get(f) == cp[f] for f in fields)


# --- the pack ------------------------------------------------------------------------------


class Pack:
    """One unzipped evidence pack and what checking it found."""

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
            self.problem(f"{name} is missing from the pack")
            return None
        return path

    def check(self) -> bool:
        """Run every check; True when nothing is wrong."""
        paths = [self.path(n) for n in ("manifest.json", "public_key.pem", "manifest.sig")]
        if None in paths:
            return False
        manifest_bytes = paths[0].read_bytes()
        try:
            manifest = json.loads(manifest_bytes)
            public_key = public_key_from_pem(paths[1].read_text("ascii"))
            signature = bytes.fromhex(paths[2].read_text("ascii").strip())
        except (ValueError, UnicodeDecodeError) as error:
            self.problem(f"the manifest, its signature or the public key cannot be read: {error}")
            return False
        if not isinstance(manifest, dict) or manifest.get("type") != MANIFEST_TYPE:
            self.problem("manifest.json is not a Deletion Desk evidence manifest")
            return False
        if not ed25519_verify(public_key, manifest_bytes, signature):
            self.problem("manifest.sig: the signature of manifest.json does not verify")
        self.facts.append(f"manifest.json is signed by key {key_id(public_key)}")
        self.check_chain(manifest, public_key)
        self.check_files(manifest)
        return not self.problems

    def check_files(self, manifest: dict) -> None:
        """Every file the manifest lists still has the SHA-256 it had at issue."""
        files = manifest.get("files", {})
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
        if files:
            self.facts.append(f"{', '.join(sorted(files))}: as issued (SHA-256 match)")

    def check_chain(self, manifest: dict, public_key: bytes) -> None:
        """Recompute audit.jsonl, then check it against the head and every checkpoint."""
        checkpoints = list(self.jsonl("checkpoints.jsonl"))
        wanted = {cp.get("seq") for cp in checkpoints} | {
            cp.get("seq", 0) + 1 for cp in checkpoints
        }
        batch = manifest.get("batch", {})
        listed = set(batch.get("entries", []))
        kept, recorded, concerning = {}, [], set()
        expected, prev, broken = 1, GENESIS_HASH, None
        for entry in self.jsonl("audit.jsonl"):
            seq = entry.get("seq")
            broken = broken or _link_problem(entry, expected, prev)
            if broken:
                break
            prev, expected = entry["hash"], expected + 1
            if seq in wanted:
                kept[seq] = entry
            if entry.get("action") == CHECKPOINT_ACTION:
                recorded.append(entry)
            if seq in listed and _concerns(entry, batch):
                concerning.add(seq)
        if broken:
            self.problem(f"audit.jsonl: {broken}")
            return
        end, head = expected - 1, manifest.get("head", {})
        if (end, prev) != (head.get("seq"), head.get("hash")):
            self.problem(
                f"audit.jsonl ends at seq {end}, but the head at issue was seq {head.get('seq')}: "
                "entries were removed from its end, or added"
            )
        self.facts.append(f"audit.jsonl: {end} entries, the hash chain is intact, head {prev}")
        try:
            found = check_checkpoints(
                checkpoints, kept, recorded, end, public_key.hex(), ed25519_verify
            )
        except (KeyError, TypeError, ValueError) as error:
            found = [f"checkpoints.jsonl cannot be read: {error!r}"]
        for text in found:
            self.problem(text)
        if checkpoints and not found:
            latest = checkpoints[-1]
            self.facts.append(
                f"{len(checkpoints)} signed checkpoint(s) verify and the chain extends each "
                f"(latest: seq {latest['seq']}, signed {latest['at']})"
            )
        self.check_batch(batch, listed, concerning)

    def check_batch(self, batch: dict, listed: set, concerning: set) -> None:
        """The entries the manifest lists for the batch are in the chain and about it."""
        missing = sorted(listed - concerning)
        if missing:
            self.problem(
                f"{len(missing)} of the {len(listed)} entries listed for batch {batch.get('id')} "
                f"are absent from the chain or not about it (first: seq {missing[0]})"
            )
        elif listed:
            self.facts.append(
                f"batch {batch.get('id')}: {len(listed)} audit entries (seq {min(listed)} to "
                f"{max(listed)}), all in the verified chain"
            )

    def jsonl(self, name: str):
        """The objects of a JSON Lines file, one line at a time (flat memory)."""
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


def _link_problem(entry: dict, expected: int, prev: str) -> str | None:
    seq = entry.get("seq")
    if seq != expected:
        if isinstance(seq, int) and seq > expected:
            return f"entry {expected} is missing (next is {seq})"
        return f"entry {seq} is out of order (expected {expected})"
    if entry.get("prev_hash") != prev:
        return f"entry {seq} does not follow entry {seq - 1}"
    if entry_hash(entry) != entry.get("hash"):
        return f"entry {seq} was altered after it was written"
    return None


def _concerns(entry: dict, batch: dict) -> bool:
    """True when an entry is about the batch: its own, its Heap requests', its subjects'."""
    target = (entry.get("target_type"), entry.get("target_id"))
    if target == ("batch", str(batch.get("id"))):
        return True
    targets = batch.get("targets", {})
    if target[1] in targets.get(target[0] or "", []):
        return True
    details = entry.get("details") or {}
    return details.get("batch_id") == batch.get("id") or batch.get("id") in (
        details.get("batch_ids") or []
    )


def main(argv: list[str]) -> int:
    """Check the pack in the folder given (default: this script's folder)."""
    folder = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    pack = Pack(folder)
    ok = pack.check()
    if ok:
        print("ok")
        for fact in pack.facts:
            print(f"  {fact}")
        print(
            "  Compare the key id above with the one the desk publishes "
            "(GET /api/v1/audit/public-key, or the Checkpoints page)."
        )
        return 0
    print(f"FAILED: {len(pack.problems)} problem(s) found in {folder}")
    for problem in pack.problems:
        print(f"  - {problem}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
