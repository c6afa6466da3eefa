"""A data subject's receipt: for a controller asked "prove you deleted me".

The evidence pack's shape (bundle.py) for one subject: the entries that show its batch
approved, its Heap deletion request sent, accepted and completed (and its identifier purged),
their inclusion proofs against the tree head signed at issue, a one-page letter in plain
language, the public key, the signed manifest and verify.py. No other subject appears, and the
subject's own identifier only masked: the fingerprint identifies it.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Flask
from sqlmodel import Session

from webapp.erasure.deadlines import SubjectNotFound
from webapp.evidence import bundle
from webapp.evidence import facts as evidence
from webapp.evidence.certificate_layout import CertificatePDF, at_text, when
from webapp.evidence.facts import SubjectEvidence
from webapp.models import Subject

DOCUMENTS = """\
  receipt.pdf        One page in plain language: the person (fingerprint; identifier masked),
                     when their request arrived and was due, when it was sent to Heap and
                     when Heap reported the deletion complete, with the audit entry of each.
"""
ENTRIES = """The audit entries that show it: the subject's own, its Heap deletion
                     request's (planned, sent, accepted, complete), its batch's upload and
                     four-eyes approval, and the purge of its identifier; no other entry,
                     no other data subject."""
# What each entry a receipt carries says, in plain words (others are named by their action).
STEPS = {
    "batch.uploaded": "The erasure request was recorded at the desk (batch {batch}).",
    "batch.approved": "A second officer approved sending it to Heap (four-eyes).",
    "subject.deadline_extended": "The deadline was extended (GDPR Art. 12(3)); the person told.",
    "heap_request.planned": "It was put in a deletion request for Heap.",
    "heap_request.sending": "The deletion request was sent to Heap.",
    "heap_request.outcome_unknown": "Heap's answer was lost on the way; it was sent again.",
    "heap_request.retry_scheduled": "Heap could not take it then; it was tried again later.",
    "heap_request.accepted": "Heap accepted it: deletion_request_id {ids}.",
    "heap_request.status_changed": "Heap reported the deletion complete.",
    "retention.purged": "The desk erased its own copy of the identifier.",
}


def _lead(ev: SubjectEvidence) -> str:
    s = ev.subject
    if s.state == "complete":
        return (
            f"The personal data of the person below was deleted from Heap. Heap reported the "
            f"deletion complete on {when(s.completed_at)}. The request was received on "
            f"{s.received_on} and was due by {s.due_on}: the deadline was {ev.deadline}."
        )
    if s.classification != "valid":
        return (
            f"This row was not sent to Heap: it was {s.classification.replace('_', ' ')}"
            f"{f' ({s.problem})' if s.problem else ''}. This is not a receipt of erasure."
        )
    return (
        f"The deletion of the person below is “{s.state}”: Heap has not reported it complete. "
        "This is not a receipt of erasure; it shows how far the deletion has gone."
    )


def receipt_pdf(ev: SubjectEvidence, *, key_id: str) -> bytes:
    """The one-page letter: who, what happened when (with its audit entry), how it is proven."""
    s, env, sth = ev.subject, ev.environment, ev.chain.sth
    pdf = CertificatePDF(f"Deletion Desk · receipt · issued {when(ev.issued_at)}")
    title = "Receipt of erasure" if s.state == "complete" else "Erasure status"
    pdf.title_block(
        f"{title} — one data subject",
        f"Heap environment “{env.name}” (app_id {env.app_id}) · issued {when(ev.issued_at)}",
    )
    pdf.paragraph(_lead(ev), 10.5, bold=True)
    pdf.heading("Who")
    purged = f"erased from the desk on {when(s.purged_at)}" if s.purged_at else "—"
    pdf.facts(
        [
            ("Identifier", ev.identifier or purged),
            ("Kind", s.kind or "—"),
            ("Fingerprint", s.fingerprint or "—"),
            ("Reference", s.reference or "—"),
        ]
    )
    pdf.paragraph(
        "The fingerprint is a keyed hash (HMAC-SHA256) of the identifier: it names the person "
        "in the desk's records and in this receipt without the identifier itself.",
        8.5,
    )
    pdf.heading("What happened")
    ids = ", ".join(d.deletion_request_id for d in ev.request.deletion_ids) if ev.request else ""
    rows = [
        [
            at_text(entry["at"]),
            STEPS.get(entry["action"], entry["action"]).format(batch=ev.batch.id, ids=ids or "—"),
            str(entry["seq"]),
        ]
        for entry in ev.chain.entries
    ]
    if rows:
        pdf.grid(("When (UTC)", "What", "Audit entry"), rows, (34, 116, 24))
    else:
        pdf.paragraph("Nothing has been recorded about it yet.")
    pdf.heading("How this is proven")
    pdf.paragraph(
        f"This receipt carries the {len(ev.chain.entries)} entries of the desk's tamper-evident "
        "audit log that record these steps (entries.jsonl), each with a proof that it is part "
        f"of the log as the desk signed it on {at_text(sth['timestamp'])} UTC: "
        f"{sth['tree_size']:,} entries, root {sth['root_hash']}, signing key id {key_id}. "
        "Anyone can check it: unzip the receipt and run `python3 verify.py` in the folder. It "
        "needs only Python, and prints “ok” or names what was altered. The receipt holds no "
        "other person's data.",
        9,
    )
    pdf.set_title(f"{title} — subject {s.id}")
    return bytes(pdf.output())


def _about(ev: SubjectEvidence) -> dict:
    s = ev.subject
    ids = [d.deletion_request_id for d in ev.request.deletion_ids] if ev.request else []
    return {
        "subject": {
            "id": s.id,
            "fingerprint": s.fingerprint,
            "kind": s.kind,
            "identifier": ev.identifier,
            "state": s.state,
            "received_on": s.received_on.isoformat(),
            "due_on": s.due_on.isoformat(),
            "deadline": ev.deadline,
            "heap_deletion_request_ids": ids,
            "completed_at": s.completed_at.isoformat() if s.completed_at else None,
            "identifier_purged_at": s.purged_at.isoformat() if s.purged_at else None,
        },
        "batch": {"id": ev.batch.id, "file_sha256": ev.batch.file_sha256},
    }


def _exists(session: Session, subject_id: int) -> None:
    if session.get(Subject, subject_id) is None:
        raise SubjectNotFound(f"There is no subject {subject_id}.")


def subject_receipt(app: Flask, subject_id: int) -> Iterator[bytes]:
    """The receipt's zip bytes, streamed.

    Raises SubjectNotFound, SigningKeyError or TreeHeadError before the first byte.
    """
    ev, proofs, public = bundle.gather(
        app,
        lambda session: _exists(session, subject_id),
        lambda session, sth: evidence.subject_evidence(session, subject_id, sth=sth),
    )
    readme = bundle.readme(
        f"Receipt of erasure for one data subject — Deletion Desk\n"
        f"Fingerprint {ev.subject.fingerprint}\nIssued {when(ev.issued_at)}",
        ev.chain,
        public.key_id,
        DOCUMENTS,
        ENTRIES,
    )
    return bundle.proven_zip(
        app,
        "subject",
        ev,
        proofs,
        public,
        documents=[
            ("README.txt", [readme]),
            ("receipt.pdf", [receipt_pdf(ev, key_id=public.key_id)]),
        ],
        about=_about(ev),
    )
