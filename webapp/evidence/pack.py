"""The evidence pack of a batch: a zip an outside auditor can verify with nothing but Python.

The audit trail is one chain for the whole desk, so the pack carries the chain from seq 1 to the
head at issue (entries hold fingerprints, never identifiers), every signed checkpoint, the
public key, and a manifest — signed with the desk's key — naming the head, the batch's entries
and the SHA-256 of every file. The zip is streamed as it is written: memory stays flat however
long the chain.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from flask import Flask

from webapp.db import session_scope
from webapp.evidence import certificates, checkpoints, signing
from webapp.evidence import facts as evidence
from webapp.evidence import reports as evidence_reports
from webapp.evidence.verifier_script import MANIFEST_TYPE
from webapp.trail import audit

VERIFIER = Path(__file__).resolve().parent / "verifier_script.py"
README = """Evidence pack of batch {batch_id} — Deletion Desk
Issued {issued_at} at audit chain head seq {head_seq}
  {head_hash}
Signing key id {key_id}

HOW TO VERIFY
  Unzip, then in this folder run:   python3 verify.py
  It needs Python 3.8 or later and nothing else. It prints "ok" and exits 0 when every check
  below passes; otherwise it names each problem (the first altered, missing or cut-off entry,
  the file that changed, the signature that fails) and exits 1. Then compare the key id it
  prints with the one the desk publishes (GET /api/v1/audit/public-key, or its Checkpoints
  page): the signatures prove authorship only for a key you got from the desk itself.

WHAT EACH FILE IS, AND WHAT IT PROVES
  certificate.pdf    The deletion certificate: environment, uploader and approver, the upload's
                     SHA-256, counts, every Heap deletion_request_id with its times, deadlines
                     met or missed, the status history, and the chain head at issue.
  report.csv         One line per uploaded row: fingerprint, kind, identifier ({identifiers};
                     "purged" once the retention period has passed), dates, deadline, Heap
                     deletion_request_id(s), status, completion time.
  audit.jsonl        The desk's whole audit trail from seq 1 to the head above, one entry per
                     line. Each entry's "hash" is the SHA-256 of the entry without "hash",
                     serialised as JSON with sorted keys, separators (",", ":") and UTF-8 kept
                     as is; "prev_hash" is the hash of the entry before (64 zeros for seq 1).
                     Recomputing the chain proves that no entry was altered, inserted or
                     removed. The trail is one chain for the whole desk, so all of it is here;
                     entries name data subjects only by fingerprint (HMAC-SHA256), never by
                     identifier.
  checkpoints.jsonl  Ed25519 signatures the desk made over the chain head (seq, hash, time) at
                     intervals. The chain must still contain each signed head: this detects a
                     trail that was rewritten from some point on (hashes recomputed) or cut off.
  public_key.pem     The desk's Ed25519 public key (its id is the SHA-256 of the raw key).
  manifest.json      The head at issue, the seqs of the entries about this batch, and the
                     SHA-256 of every other file; manifest.sig is the desk's Ed25519 signature
                     of manifest.json's exact bytes. Together they prove the files are as the
                     desk issued them.
  verify.py          The checker (standard library only, Ed25519 after RFC 8032). Read it: it
                     is short.
"""


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


class _Plan:
    """What is fixed before the first byte is sent (so errors are still a clean 4xx/5xx)."""

    def __init__(self, app: Flask, batch_id: int, masked: bool):
        self.app, self.batch_id, self.masked = app, batch_id, masked
        with app.app_context(), session_scope(write=False, app=app) as session:
            self.evidence = evidence.batch_evidence(session, batch_id)
            self.public = signing.public_key(app)
            head = self.evidence.chain.head_seq
            self.checkpoints = [
                checkpoints.checkpoint_dict(row)
                for row in checkpoints.list_checkpoints(session, max_seq=head)
            ]
            self.certificate = certificates.batch_certificate(
                self.evidence, key_id=self.public.key_id
            )

    def audit_lines(self) -> Iterator[bytes]:
        with self.app.app_context(), session_scope(write=False, app=self.app) as session:
            for row in audit.iter_rows(session, max_seq=self.evidence.chain.head_seq):
                yield (audit.row_json(row) + "\n").encode("utf-8")

    def readme(self) -> bytes:
        chain = self.evidence.chain
        return README.format(
            batch_id=self.batch_id,
            issued_at=audit.format_at(self.evidence.issued_at),
            head_seq=chain.head_seq,
            head_hash=chain.head_hash,
            key_id=self.public.key_id,
            identifiers="masked, like a***@b***.com" if self.masked else "while retained",
        ).encode("utf-8")

    def manifest(self, files: dict[str, str]) -> bytes:
        ev = self.evidence
        body = {
            "type": MANIFEST_TYPE,
            "issued_at": audit.format_at(ev.issued_at),
            "environment": {
                "name": ev.environment.name,
                "app_id": ev.environment.app_id,
                "region": ev.environment.region,
            },
            "batch": {
                "id": ev.batch.id,
                "state": ev.batch.state,
                "file_sha256": ev.batch.file_sha256,
                "entries": ev.chain.seqs,
                "targets": ev.chain.targets,
            },
            "head": {"seq": ev.chain.head_seq, "hash": ev.chain.head_hash},
            "checkpoints": len(self.checkpoints),
            "key_id": self.public.key_id,
            "report_identifiers": "masked" if self.masked else "as retained",
            "files": files,
        }
        return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


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


def evidence_pack(app: Flask, batch_id: int, *, masked: bool = True) -> Iterator[bytes]:
    """The zip's bytes, streamed; raises BatchNotFound or SigningKeyError before the first."""
    plan = _Plan(app, batch_id, masked)
    return _stream(plan)


def _stream(plan: _Plan) -> Iterator[bytes]:
    moment = plan.evidence.issued_at
    report = (
        text.encode("utf-8")
        for text in evidence_reports.batch_report(plan.app, plan.batch_id, masked=plan.masked)
    )
    files: list[tuple[str, Iterable[bytes]]] = [
        ("certificate.pdf", [plan.certificate]),
        ("report.csv", report),
        ("audit.jsonl", plan.audit_lines()),
        (
            "checkpoints.jsonl",
            [(audit.canonical_json(cp) + "\n").encode("utf-8") for cp in plan.checkpoints],
        ),
        ("public_key.pem", [plan.public.pem.encode("ascii")]),
        ("verify.py", [VERIFIER.read_bytes()]),
        ("README.txt", [plan.readme()]),
    ]
    sink = _Sink()
    digests: dict[str, str] = {}
    with zipfile.ZipFile(sink, "w") as archive:
        for name, parts in files:
            for data, digest in _write(archive, sink, name, parts, moment):
                if data:
                    yield data
                if digest:
                    digests[name] = digest
        manifest = plan.manifest(digests)
        signature = signing.sign(manifest, plan.app)
        signed = (("manifest.json", manifest), ("manifest.sig", f"{signature}\n".encode()))
        for name, data in signed:
            for chunk, _ in _write(archive, sink, name, [data], moment):
                if chunk:
                    yield chunk
    yield sink.take()
