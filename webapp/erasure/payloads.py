"""What one Heap deletion request carries: its users, decrypted just in time, and their hash.

Raw identifiers exist only in memory here; the database and the audit trail hold the payload's
SHA-256, and Heap's error texts are stored only after the request's identifiers are redacted.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlmodel import Session, select

from webapp.crypto import decrypt
from webapp.heap.redaction import redact
from webapp.heap.validation import validate_deletion_users
from webapp.models import Subject
from webapp.trail import audit


def payload_sha256(users: list[dict[str, Any]]) -> str:
    """SHA-256 of the request body `{"users": [...]}` in the audit trail's canonical JSON."""
    return hashlib.sha256(audit.canonical_json({"users": users}).encode("utf-8")).hexdigest()


def deletion_user(kind: str | None, identifier_encrypted: str | None) -> dict[str, Any]:
    """One element of a deletion body, decrypted just now (user_id as a JSON number)."""
    if not identifier_encrypted:
        raise ValueError("a subject to be deleted has no stored identifier")
    text = decrypt(identifier_encrypted)
    return {"user_id": int(text)} if kind == "user_id" else {"identity": text}


def chunk_users(session: Session, chunk_id: int) -> list[dict[str, Any]]:
    """The exact `users` list of a chunk, in subject order (raw identifiers: memory only)."""
    rows = session.exec(
        select(Subject.kind, Subject.identifier_encrypted)
        .where(Subject.heap_request_id == chunk_id)
        .order_by(Subject.id)
    ).all()
    return validate_deletion_users([deletion_user(kind, token) for kind, token in rows])


def redact_subjects(message: str, users: list[dict[str, Any]]) -> str:
    """Cut the chunk's identifiers out of a text Heap answered, in any spelling it echoes.

    Raw, NFC or NFD, case-folded, whitespace collapsed, JSON- or percent-escaped: see
    `heap/redaction.py`. User ids are cut as whole numbers, whether echoed as numbers or text.
    """
    return redact(
        message,
        {
            "[identity]": [user["identity"] for user in users if "identity" in user],
            "[user_id]": [user["user_id"] for user in users if "user_id" in user],
        },
    )
