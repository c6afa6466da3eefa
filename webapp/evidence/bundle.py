"""What a batch's evidence pack and a subject's receipt share: a zip of entries proven against
a signed tree head, a signed manifest and the verify.py that checks them.

The evidence carries only the entries it is about, each with its RFC 9162 inclusion proof
against the tree head signed at issue (DESIGN.md, "Transparency log"): nothing else of the
desk's history, and a size that does not grow with it. Everything that can fail — the tree
head, the entries, their proofs, the documents — is read before the first byte; the zip is
then streamed as it is written.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from flask import Flask
from sqlmodel import Session

from webapp.db import session_scope
from webapp.evidence import signing, tree_heads
from webapp.evidence.chain import ChainFacts
from webapp.evidence.facts import BatchEvidence, SubjectEvidence
from webapp.evidence.verifier_script import MANIFEST_TYPE
from webapp.trail import audit, merkle, tree

VERIFIER = Path(__file__).resolve().parent / "verifier_script.py"
MERKLE_SECTION = re.compile(r"# ---- BEGIN VERIFIER.*?# ---- END VERIFIER[^\n]*\n", re.DOTALL)

Files = list[tuple[str, Iterable[bytes]]]
Evidence = TypeVar("Evidence", BatchEvidence, SubjectEvidence)

HOW_TO_VERIFY = """HOW TO VERIFY
  Unzip, then in this folder run:   python3 verify.py
  It needs Python 3.8 or later and nothing else. It recomputes the hash of every entry, checks
  that each has exactly one inclusion proof and that the proof leads to the root of the signed
  tree head, checks the Ed25519 signatures of the tree head and of the manifest, and the
  SHA-256 of every file. It prints "ok" and exits 0, or prints FAILED naming the first problem
  (an altered or missing entry, a proof that does not fit, a forged tree head, a changed file)
  and exits 1. Then compare the key id it prints with the one the desk publishes
  (GET /api/v1/audit/public-key): the signatures prove authorship only under a key you got
  from the desk itself.

  The tree head covers the desk's whole audit log at issue, not only these entries: anyone
  who keeps it can later ask the desk for a consistency proof to any newer head
  (GET /api/v1/audit/consistency?first={tree_size}&second=N). A rewrite of anything this head
  covers cannot pass that, even with every hash recomputed.
"""

TIMESTAMP = """
RFC 3161 TIMESTAMP
  sth.json carries "tsa_token": a time-stamping authority's token over the same bytes the desk
  signed, so not even the desk's own key can backdate this head. verify.py cannot check it
  (Python's standard library has no CMS); OpenSSL can, with the authority's CA certificate:
    python3 verify.py --tsa         (writes sth.tst, the token, and sth.msg, the signed bytes)
    openssl ts -verify -token_in -in sth.tst -data sth.msg -CAfile TSA-CA.pem
"""

PROOF_FILES = """  entries.jsonl      {entries}
                     One entry per line; its "hash" is the SHA-256 of the entry without
                     "hash", serialised as JSON with sorted keys, separators (",", ":") and
                     UTF-8 kept as is. Entries name data subjects only by fingerprint
                     (HMAC-SHA256), never by identifier.
  proofs.jsonl       One RFC 9162 inclusion proof per entry, in the same order: seq,
                     leaf_index (seq - 1), tree_size, leaf_hash (SHA-256 of 0x00 and the
                     entry's hash) and the path of sibling hashes up to the root.
  sth.json           The signed tree head: the size and root hash of the desk's audit log at
                     issue and the time, signed with Ed25519 over {{"root_hash","timestamp",
                     "tree_size"}} as JSON with sorted keys and no spaces.
  public_key.pem     The desk's Ed25519 public key (its id is the SHA-256 of the raw key).
  manifest.json      What this is about, the tree head, the entries' seqs and the SHA-256 of
                     every other file; manifest.sig is the desk's Ed25519 signature of
                     manifest.json's exact bytes (hex).
  verify.py          The checker (standard library only). Read it: it is short.

OLDER PACKS
  Evidence packs issued before the desk signed tree heads carry the whole audit chain
  (audit.jsonl, checkpoints.jsonl) instead; each keeps verifying with its own verify.py.
"""


def signed_tree_head(app: Flask) -> dict:
    """The tree head at issue, signed now if the trail grew (DESIGN.md's STH shape).

    SigningKeyError without a key; TreeHeadError when none can be signed (the time-stamping
    authority did not answer) — both before anything is sent.
    """
    signing.public_key(app)  # no key: SigningKeyError, which pages and the API explain
    head = tree_heads.issue(app)
    if head is None:
        raise tree_heads.TreeHeadError("The audit trail is empty: there is nothing to prove yet.")
    return tree_heads.sth_dict(head)


def inclusion_proofs(session: Session, seqs: list[int], tree_size: int) -> list[dict]:
    """One inclusion proof per entry (DESIGN.md's shape), their nodes read all at once."""
    wanted: set[merkle.Node] = set()
    for seq in seqs:
        wanted |= merkle.needed_nodes_for_inclusion(seq - 1, tree_size)
        wanted.add((0, seq - 1))
    get = merkle.dict_getter(tree.fetch(session, wanted))
    return [
        {
            "seq": seq,
            "leaf_index": seq - 1,
            "tree_size": tree_size,
            "leaf_hash": get(0, seq - 1).hex(),
            "path": [node.hex() for node in merkle.inclusion_proof(seq - 1, tree_size, get)],
        }
        for seq in seqs
    ]


def gather(
    app: Flask,
    check: Callable[[Session], object],
    read: Callable[[Session, dict], Evidence],
) -> tuple[Evidence, list[dict], signing.PublicKey]:
    """Sign the tree head at issue, read the evidence under it and prove each of its entries.

    `check` raises (not found) before any head is signed; the evidence is read after the head,
    in a session of its own, so the head holds every entry it lists.
    """
    with app.app_context(), session_scope(write=False, app=app) as session:
        check(session)
    sth = signed_tree_head(app)
    with app.app_context(), session_scope(write=False, app=app) as session:
        ev = read(session, sth)
        proofs = inclusion_proofs(session, ev.chain.seqs, sth["tree_size"])
    return ev, proofs, signing.public_key(app)


@functools.cache
def verify_py() -> bytes:
    """verify.py as handed out: the verifier with merkle.py's VERIFIER section in it."""
    section = MERKLE_SECTION.search(Path(merkle.__file__).read_text("utf-8")).group(0)
    script = MERKLE_SECTION.sub(lambda _: section, VERIFIER.read_text("utf-8"), count=1)
    return script.encode("utf-8")


def _jsonl(values: Iterable[dict]) -> Iterator[bytes]:
    for value in values:
        yield (audit.canonical_json(value) + "\n").encode("utf-8")


def _proof_files(chain: ChainFacts, proofs: list[dict], public: signing.PublicKey) -> Files:
    sth = json.dumps(chain.sth, indent=2) + "\n"
    return [
        ("entries.jsonl", _jsonl(chain.entries)),
        ("proofs.jsonl", _jsonl(proofs)),
        ("sth.json", [sth.encode("ascii")]),
        ("public_key.pem", [public.pem.encode("ascii")]),
        ("verify.py", [verify_py()]),
    ]


def readme(heading: str, chain: ChainFacts, key_id: str, documents: str, entries: str) -> bytes:
    """README.txt: what this is, how to verify it, what each file holds."""
    sth = chain.sth
    text = (
        f"{heading}\n"
        f"Signed tree head: {sth['tree_size']:,} entries, signed {sth['timestamp']}\n"
        f"  root {sth['root_hash']}\n"
        f"Signing key id {key_id}\n\n"
        + HOW_TO_VERIFY.format(tree_size=sth["tree_size"])
        + (TIMESTAMP if sth.get("tsa_token") else "")
        + "\nWHAT EACH FILE IS, AND WHAT IT PROVES\n"
        + documents
        + PROOF_FILES.format(entries=entries)
    )
    return text.encode("utf-8")


def _manifest(kind: str, ev: Evidence, key_id: str, about: dict) -> dict:
    """The manifest without its file list (added as the zip is written)."""
    env = ev.environment
    return {
        "type": MANIFEST_TYPE,
        "kind": kind,
        "issued_at": audit.format_at(ev.issued_at),
        "environment": {"name": env.name, "app_id": env.app_id, "region": env.region},
        **about,
        "sth": {name: ev.chain.sth[name] for name in ("tree_size", "root_hash", "timestamp")},
        "key_id": key_id,
        "entries": ev.chain.seqs,
        "targets": ev.chain.targets,
    }


class _Sink:
    """A write-only file object: zipfile writes into it, the generator hands the bytes on."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: the bytes wait in `parts` until taken."""

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return data


def _write(
    archive: zipfile.ZipFile, sink: _Sink, name: str, parts: Iterable[bytes], moment: datetime
) -> Iterator[tuple[bytes, str]]:
    """Add one file to the zip from its parts; yield (zip bytes so far, its SHA-256 at the end)."""
    info = zipfile.ZipInfo(name, date_time=moment.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    sha = hashlib.sha256()
    with archive.open(info, "w", force_zip64=True) as handle:
        for part in parts:
            sha.update(part)
            handle.write(part)
            if sink.size >= 1 << 16:
                yield sink.take(), ""
    yield sink.take(), sha.hexdigest()


def proven_zip(
    app: Flask,
    kind: str,
    ev: Evidence,
    proofs: list[dict],
    public: signing.PublicKey,
    *,
    documents: Files,
    about: dict,
) -> Iterator[bytes]:
    """The zip: `documents`, the entries with their proofs, the tree head, the key, verify.py,
    then manifest.json (naming `about` and every file's SHA-256) and manifest.sig."""
    files = documents + _proof_files(ev.chain, proofs, public)
    manifest = _manifest(kind, ev, public.key_id, about)
    sink = _Sink()
    digests: dict[str, str] = {}
    with zipfile.ZipFile(sink, "w") as archive:
        for name, parts in files:
            for data, digest in _write(archive, sink, name, parts, ev.issued_at):
                if data:
                    yield data
                if digest:
                    digests[name] = digest
        body = {**manifest, "files": digests}
        signed = (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        signature = signing.sign(signed, app)
        for name, data in (("manifest.json", signed), ("manifest.sig", f"{signature}\n".encode())):
            for chunk, _ in _write(archive, sink, name, [data], ev.issued_at):
                if chunk:
                    yield chunk
    yield sink.take()
