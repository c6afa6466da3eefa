"""The evidence pack of a batch: a zip an outside auditor can verify with nothing but Python.

It carries the batch's certificate and masked report, and only the audit entries about the
batch (its own, its Heap requests', its subjects', the purges naming it), each with its
inclusion proof against the tree head signed at issue — no other entry of the desk's history,
so its size follows the batch, not the trail. The shared machinery is in bundle.py.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Flask

from webapp.erasure.batches import get_batch
from webapp.evidence import bundle, certificates
from webapp.evidence import facts as evidence
from webapp.evidence import reports as evidence_reports
from webapp.evidence.certificate_layout import when

DOCUMENTS = """\
  certificate.pdf    The deletion certificate: environment, uploader and approver, the upload's
                     SHA-256, counts, every Heap deletion_request_id with its times, deadlines
                     met or missed, the status history, and the signed tree head above.
  report.csv         One line per uploaded row: fingerprint ({fingerprints}), kind,
                     identifier ({identifiers}; "purged" once retention has passed), dates,
                     deadline, Heap deletion_request_id(s), status, completion time.
"""
ENTRIES = """The audit entries about this batch: its own, its Heap deletion
                     requests', its subjects' and the retention purges naming it; no other
                     entry of the desk's history."""


def evidence_pack(app: Flask, batch_id: int, *, masked: bool = True) -> Iterator[bytes]:
    """The zip's bytes, streamed.

    Raises BatchNotFound, SigningKeyError or TreeHeadError before the first byte.
    """
    ev, proofs, public = bundle.gather(
        app,
        lambda session: get_batch(session, batch_id),
        lambda session, sth: evidence.batch_evidence(session, batch_id, sth=sth),
    )
    readme = bundle.readme(
        f"Evidence pack of batch {batch_id} — Deletion Desk\nIssued {when(ev.issued_at)}",
        ev.chain,
        public.key_id,
        DOCUMENTS.format(
            identifiers="masked, like a***@b***.com" if masked else "while retained",
            fingerprints="its first 16 hex characters" if masked else "in full",
        ),
        ENTRIES,
    )
    report = evidence_reports.batch_report(app, batch_id, masked=masked)
    b = ev.batch
    return bundle.proven_zip(
        app,
        "batch",
        ev,
        proofs,
        public,
        documents=[
            ("README.txt", [readme]),
            ("certificate.pdf", [certificates.batch_certificate(ev, key_id=public.key_id)]),
            ("report.csv", (text.encode("utf-8") for text in report)),
        ],
        about={
            "batch": {"id": b.id, "state": b.state, "file_sha256": b.file_sha256},
            "report_identifiers": "masked" if masked else "as retained",
        },
    )
