"""Key rotation: re-encrypt every secret stored at rest under the current Fernet key."""

from __future__ import annotations

from sqlmodel import Session, select

from webapp.crypto import rotate
from webapp.models import CorrectionCall, Environment, Subject, UserTotp
from webapp.trail import audit

# Every (table, column) holding Fernet ciphertext. Add new encrypted columns here so that
# `desk keys rotate` re-encrypts them too.
ENCRYPTED_COLUMNS: list[tuple[type, str]] = [
    (Environment, "api_key_encrypted"),
    (CorrectionCall, "body_encrypted"),
    (Subject, "identifier_encrypted"),
    (UserTotp, "secret_encrypted"),
]


def rotate_all(session: Session, *, actor: str, batch_size: int = 500) -> dict[str, int]:
    """Re-encrypt every stored secret with the first key of DESK_ENCRYPTION_KEYS; commits."""
    counts: dict[str, int] = {}
    for model, column in ENCRYPTED_COLUMNS:
        attr = getattr(model, column)
        key = model.__table__.primary_key.columns.keys()[0]
        pk = getattr(model, key)
        done, last = 0, None
        while True:
            query = select(model).where(attr.is_not(None)).order_by(pk).limit(batch_size)
            if last is not None:
                query = query.where(pk > last)
            rows = session.exec(query).all()
            if not rows:
                break
            for row in rows:
                setattr(row, column, rotate(getattr(row, column)))
            done += len(rows)
            last = getattr(rows[-1], key)
            session.flush()
        counts[f"{model.__tablename__}.{column}"] = done
    audit.record(
        session,
        actor=actor,
        action="keys.rotated",
        target_type="keys",
        target_id="encryption",
        details={"reencrypted": counts},
    )
    session.commit()
    return counts
