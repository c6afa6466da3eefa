"""Deletion certificates as PDF: readable by a person, text-extractable by machines.

A certificate summarises; the report CSV and the evidence pack carry every row and every entry.
The page layout (fonts, tables) is in certificate_layout.
"""

from __future__ import annotations

from sqlmodel import Session

from webapp.evidence.certificate_layout import CertificatePDF, at_text, short_when, when
from webapp.evidence.chain import ChainFacts, summary
from webapp.evidence.facts import (
    BatchEvidence,
    RequestFact,
    SubjectEvidence,
    batch_evidence,
    subject_evidence,
    subject_status,
)
from webapp.evidence.signing import key_id_or_none

HISTORY_ROWS = 40  # status-history lines printed; the evidence zip's entries.jsonl has all


def _request_rows(requests: list[RequestFact]) -> list[list[str]]:
    rows = []
    for fact in requests:
        chunk = fact.request
        ids = fact.deletion_ids or [None]
        for did in ids:
            rows.append(
                [
                    str(chunk.chunk_index),
                    f"{chunk.subject_count:,}",
                    did.deletion_request_id if did else (chunk.deletion_request_id or "not yet"),
                    short_when(did.accepted_at if did else chunk.accepted_at),
                    short_when((did.completed_at if did else None) or chunk.completed_at),
                    (did.status if did else None) or chunk.heap_status or chunk.state,
                ]
            )
    return rows


def _history(pdf: CertificatePDF, entries: list[dict], total: int, zip_name: str) -> None:
    rows = [
        [
            str(e["seq"]),
            at_text(e["at"]),
            e["actor"],
            f"{e['action']}\n{e['target_type']} {e['target_id']}".strip(),
            summary(e, 110),
        ]
        for e in entries[:HISTORY_ROWS]
    ]
    if rows:
        pdf.grid(("Seq", "At (UTC)", "Actor", "Action", "Details"), rows, (8, 31, 32, 45, 58))
    else:
        pdf.paragraph("No audit entry concerns it yet.")
    if total > len(rows):
        pdf.paragraph(
            f"{total - len(rows):,} further entries are in the entries.jsonl of its {zip_name} "
            "(manifest.json names their seqs).",
            8.5,
        )


def _chain(pdf: CertificatePDF, chain: ChainFacts, key_id: str | None) -> None:
    pdf.heading("Audit trail at issue")
    sth = chain.sth
    pdf.facts(
        [
            (
                "Entries about it",
                f"{len(chain.entries):,} (seq {chain.first_seq} to {chain.last_seq})"
                if chain.entries
                else "none yet",
            ),
            (
                "Signed tree head",
                f"{sth['tree_size']:,} entries, signed {at_text(sth['timestamp'])} UTC"
                if sth
                else "none signed yet",
            ),
            ("Tree root hash", sth["root_hash"] if sth else "—"),
            ("Signing key id", key_id or "no signing key configured"),
        ]
    )
    if sth and not chain.covered:
        pdf.paragraph(
            f"Entries after seq {sth['tree_size']:,} are newer than this tree head; the next "
            "one the desk signs covers them (its evidence zip signs one at once).",
            8.5,
        )


def _how_to_verify(pdf: CertificatePDF, download: str) -> None:
    pdf.heading("How to verify this certificate")
    pdf.paragraph(
        f"1. Download {download}, unzip it and run `python3 verify.py` in the folder. It "
        "needs only Python: it recomputes the hash of every audit entry listed above, checks "
        "each entry's inclusion proof against the signed tree head, checks the Ed25519 "
        "signatures of the tree head and of the zip's manifest, and prints “ok” or names what "
        "was altered or removed.",
        9,
    )
    pdf.paragraph(
        "2. Check that the key id verify.py prints is the key id above, and the one the desk "
        "publishes (GET /api/v1/audit/public-key).",
        9,
    )
    pdf.paragraph(
        "3. The tree head names the desk's whole audit log at issue. Every later head the desk "
        "signs must be consistent with it (GET /api/v1/audit/consistency, checked by any "
        "witness that keeps the heads): a rewrite of any entry it covers cannot pass that.",
        9,
    )


def _finish(pdf: CertificatePDF, title: str) -> bytes:
    pdf.set_title(title)
    return bytes(pdf.output())


def batch_certificate(ev: BatchEvidence, *, key_id: str | None) -> bytes:
    """The certificate of a batch: who, what, when, Heap's ids, deadlines, the chain."""
    b, env, c = ev.batch, ev.environment, ev.counts
    pdf = CertificatePDF(f"Deletion Desk · batch {b.id} · issued {when(ev.issued_at)}")
    title = "Certificate of erasure" if ev.complete else "Erasure status report"
    pdf.title_block(
        f"{title} — batch {b.id}",
        f"Heap environment “{env.name}” (app_id {env.app_id}, region {env.region.upper()}) · "
        f"issued {when(ev.issued_at)}",
    )
    d = ev.deadlines
    if ev.complete:
        pdf.paragraph(
            f"Deletion Desk certifies that the {c['valid']:,} valid data subject(s) of batch "
            f"{b.id} were sent to Heap for deletion in {len(ev.requests)} deletion request(s), "
            f"and that Heap reported every request complete by {when(b.completed_at)}. "
            f"{d.met:,} deletion(s) were completed within their GDPR Art. 12(3) deadline, "
            f"{d.missed:,} after it.",
            10,
            bold=True,
        )
    else:
        pdf.paragraph(
            f"This batch is “{b.state.replace('_', ' ')}”: this document is not a certificate "
            "of completed erasure. It records where the batch stands at issue.",
            10,
            bold=True,
        )
    pdf.heading("Batch")
    people = ev.people
    pdf.facts(
        [
            ("Batch", f"{b.id} ({b.state.replace('_', ' ')})"),
            ("Source", b.filename or ("pasted list" if b.source == "paste" else b.source)),
            ("File SHA-256", b.file_sha256),
            ("Requests received on", b.received_on.isoformat()),
            ("Reference", b.reference or "—"),
            ("Uploaded by", f"{people['uploaded_by']} · {when(b.created_at)}"),
            (
                "Approved by",
                f"{people['approved_by']} · {when(b.approved_at)}" if b.approved_by else "—",
            ),
            ("Submitted", when(b.submitted_at)),
            ("Completed", when(b.completed_at)),
        ]
    )
    pdf.heading("Subjects")
    pdf.grid(
        ("Rows read", ev.valid_label, "Malformed", "Duplicate", "Already requested", "Excluded"),
        [
            [
                f"{c[k]:,}"
                for k in (
                    "rows",
                    "valid",
                    "malformed",
                    "duplicate",
                    "already_requested",
                    "excluded",
                )
            ]
        ],
        (1, 3, 1, 1, 1, 1),  # room for "Valid (not sent: batch cancelled)" on one line
    )
    pdf.grid(
        ("Completed", "Awaiting Heap", ev.unsent_label, "Failed", "Identifiers purged"),
        [
            [
                f"{c[k]:,}"
                for k in ("complete", "submitted", "pending", "failed", "identifiers_purged")
            ]
        ],
        (1, 1, 1, 1, 1),
    )
    pdf.heading("Heap deletion requests")
    if ev.requests:
        pdf.grid(
            (
                "Chunk",
                "Subjects",
                "deletion_request_id",
                "Accepted (UTC)",
                "Completed (UTC)",
                "Status",
            ),
            _request_rows(ev.requests),
            (12, 16, 62, 31, 31, 22),
        )
    else:
        pdf.paragraph("Nothing has been sent to Heap.")
    pdf.heading("Deadlines (GDPR Art. 12(3))")
    pdf.facts(
        [
            (
                "Due dates",
                f"{d.first_due} to {d.last_due}" if d.first_due else "no valid subject",
            ),
            ("Met", f"{d.met:,} completed on or before their due date"),
            ("Missed", f"{d.missed:,} completed after their due date"),
            ("Open, in time", f"{d.open:,}"),
            ("Open, overdue", f"{d.overdue:,}"),
            ("Extended", f"{d.extended:,} subject(s) with an extension"),
        ]
    )
    pdf.heading("Status history")
    _history(pdf, ev.history, ev.history_total, "evidence pack")
    for action, count in sorted(ev.subject_actions.items()):
        pdf.paragraph(f"Entries about single subjects: {count:,} × {action}.", 8.5)
    _chain(pdf, ev.chain, key_id)
    _how_to_verify(
        pdf,
        f"the evidence pack of batch {b.id} (batch page, or GET "
        f"/api/v1/batches/{b.id}/evidence.zip)",
    )
    return _finish(pdf, f"{title} — batch {b.id}")


def subject_certificate(ev: SubjectEvidence, *, key_id: str | None) -> bytes:
    """The certificate of one data subject (fingerprint; the identifier masked while kept)."""
    s, b, env = ev.subject, ev.batch, ev.environment
    pdf = CertificatePDF(f"Deletion Desk · subject {s.id} · issued {when(ev.issued_at)}")
    complete = s.state == "complete"
    title = "Certificate of erasure" if complete else "Erasure status report"
    pdf.title_block(
        f"{title} — one data subject",
        f"Row {s.row_number} of batch {b.id} · Heap environment “{env.name}” (app_id "
        f"{env.app_id}) · issued {when(ev.issued_at)}",
    )
    if complete:
        pdf.paragraph(
            f"Deletion Desk certifies that Heap reported the deletion of this data subject "
            f"complete on {when(s.completed_at)}; its deadline was {s.due_on} ({ev.deadline}).",
            10,
            bold=True,
        )
    else:
        pdf.paragraph(
            f"This subject's deletion is “{subject_status(s.state, b.state)}”: this document "
            "is not a certificate of completed erasure.",
            10,
            bold=True,
        )
    purged = f"purged on {when(s.purged_at)}" if s.purged_at else "—"
    request = ev.request
    ids = [d.deletion_request_id for d in request.deletion_ids] if request else []
    pdf.heading("Data subject")
    pdf.facts(
        [
            ("Kind", s.kind or "—"),
            ("Fingerprint", s.fingerprint or "—"),
            ("Identifier", ev.identifier or purged),
            ("Request received on", s.received_on.isoformat()),
            ("Due on", f"{s.due_on} ({ev.deadline})"),
            (
                "Extension",
                f"{s.extension_months} month(s): {s.extension_reason}; subject told on "
                f"{s.subject_informed_on}"
                + (f"; recorded on {s.extension_recorded_on}" if s.extension_recorded_on else "")
                if s.extension_months
                else "none",
            ),
            ("Submitted", when(s.submitted_at)),
            ("Heap deletion_request_id", ", ".join(ids) or "not yet"),
            ("Completed", when(s.completed_at)),
            ("Batch file SHA-256", b.file_sha256),
        ]
    )
    pdf.heading("Status history")
    _history(pdf, ev.history, len(ev.history), "receipt")
    _chain(pdf, ev.chain, key_id)
    _how_to_verify(
        pdf,
        f"the receipt of this subject (subject page, or GET /api/v1/subjects/{s.id}/receipt.zip)",
    )
    return _finish(pdf, f"{title} — subject {s.id}")


def issue_batch_certificate(session: Session, batch_id: int) -> bytes:
    """The PDF certificate of a batch, naming the newest tree head (BatchNotFound if none)."""
    return batch_certificate(batch_evidence(session, batch_id), key_id=key_id_or_none())


def issue_subject_certificate(session: Session, subject_id: int) -> bytes:
    """The PDF certificate of one subject (SubjectNotFound if none)."""
    return subject_certificate(subject_evidence(session, subject_id), key_id=key_id_or_none())
