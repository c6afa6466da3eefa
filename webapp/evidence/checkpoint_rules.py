"""The rules a signed checkpoint must meet, shared by the desk's own check of its trail.

Evidence packs issued before the transparency log carried checkpoints and these rules in their
verify.py; signed tree heads replace checkpoints in packs now, and the desk still checks the
checkpoints it signed (evidence/checkpoints.py: verify_checkpoints).
"""

from __future__ import annotations

from webapp.evidence.verifier_script import canonical_json, key_id

CHECKPOINT_TYPE = "deletion-desk/audit-checkpoint/v1"
CHECKPOINT_ACTION = "audit.checkpoint_signed"


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
