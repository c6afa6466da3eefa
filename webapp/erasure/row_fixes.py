"""Fixing rows in the preview: the uploader excludes a valid row or corrects a malformed one.

Issue 15: one bad row used to mean cancelling the batch and uploading again. While a batch
awaits approval, its uploader (or an admin) may now take a row out, with a reason, or correct a
malformed row's identifier, which is then checked by the upload's own rules (rows.py) and
classified as the upload would have: valid, a duplicate of another row of the batch (an excluded
one included: a correction never brings back someone taken out), or already requested by
another batch. Each change recomputes the batch's counts and manifest in the transaction that
makes it, with its audit entry, so an approval of the earlier manifest no longer holds
(DESIGN.md, "Four-eyes on exactly what is sent"); approve() refuses the hash the approver saw.

The audit entry carries what batch.uploaded carries — row numbers, classifications, counts,
manifests — and the length of an exclusion's reason, never an identifier, a fingerprint or the
reason's words: a reason is written about one person and the trail can never be purged.
The reason is kept on the row, where the preview and reports show it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, select

from webapp import crypto
from webapp.erasure import batches, manifest, rows
from webapp.erasure import subjects as subject_store
from webapp.erasure.lifecycle import lock_batch
from webapp.models import MAX_ID, Batch, BatchState, Role, RowClass, Subject, SubjectState
from webapp.trail import audit

MAX_EXCLUSION_REASON = 300
MAX_FIELD = 500  # Subject.problem and Subject.warning
KINDS = ("user_id", "identity")
COUNT_COLUMNS = {
    RowClass.VALID.value: "valid_count",
    RowClass.MALFORMED.value: "malformed_count",
    RowClass.DUPLICATE.value: "duplicate_count",
    RowClass.ALREADY_REQUESTED.value: "already_requested_count",
}
# The rows a corrected identifier must not repeat: whoever the batch sends, skips as already
# requested, or had taken out.
HOLDERS = (RowClass.VALID.value, RowClass.ALREADY_REQUESTED.value, RowClass.EXCLUDED.value)


@dataclass(frozen=True)
class RowFix:
    """What a fix did: the row's classification now, its problem, whether the manifest moved."""

    row_number: int
    classification: str
    problem: str | None
    manifest_changed: bool


def counts(batch: Batch) -> dict[str, int]:
    """The batch's counts by classification, as the API and the audit trail give them."""
    return {
        "rows": batch.rows_total,
        "valid": batch.valid_count,
        "malformed": batch.malformed_count,
        "duplicate": batch.duplicate_count,
        "already_requested": batch.already_requested_count,
        "excluded": batch.excluded_count,
    }


def _fixable_row(session: Session, *, actor: str, batch_id: int, row_number: int) -> tuple:
    """The locked batch and its row, if `actor` may change rows of it now."""
    user = batches._officer(session, actor)
    batches.get_batch(session, batch_id)
    batch = lock_batch(session, batch_id)
    if batch.state != BatchState.AWAITING_APPROVAL:
        raise batches.WrongState(
            f"Batch {batch.id} is {batches.state_label(batch.state)}; only a batch awaiting "
            "approval can have its rows changed. Nothing changed."
        )
    if batch.uploaded_by != user.id and not user.role_enum.allows(Role.ADMIN):
        raise batches.NotAllowed(
            "Only the officer who uploaded this batch, or an admin, can change its rows. "
            "Nothing changed."
        )
    subject = None
    if 1 <= row_number <= MAX_ID:
        subject = session.exec(
            select(Subject).where(Subject.batch_id == batch.id, Subject.row_number == row_number)
        ).first()
    if subject is None:
        raise batches.BatchNotFound(f"Batch {batch.id} has no row {row_number}.")
    return batch, subject


def _recount(batch: Batch, before: str, after: str) -> None:
    if before in COUNT_COLUMNS:
        setattr(batch, COUNT_COLUMNS[before], getattr(batch, COUNT_COLUMNS[before]) - 1)
    if after in COUNT_COLUMNS:
        setattr(batch, COUNT_COLUMNS[after], getattr(batch, COUNT_COLUMNS[after]) + 1)


def _finish(
    session: Session, *, actor: str, batch: Batch, subject: Subject, before: str, details: dict
) -> RowFix:
    """Counts, manifest and the audit entry, in the transaction of the change; commits."""
    _recount(batch, before, subject.classification)
    session.add(subject)
    session.flush()
    old = {"count": batch.manifest_count, "sha256": batch.manifest_sha256}
    now = manifest.to_send(session, batch.id)
    batch.manifest_count, batch.manifest_sha256 = now.count, now.sha256
    session.add(batch)
    audit.record(
        session,
        actor=actor,
        action=details.pop("action"),
        target_type="batch",
        target_id=batch.id,
        details={
            "row": subject.row_number,
            "from": before,
            "to": subject.classification,
            **details,
            "counts": counts(batch),
            "manifest": {"before": old, "after": {"count": now.count, "sha256": now.sha256}},
        },
    )
    session.commit()
    return RowFix(
        row_number=subject.row_number,
        classification=subject.classification,
        problem=subject.problem,
        manifest_changed=old["sha256"] != now.sha256,
    )


def exclude_row(
    session: Session, *, actor: str, batch_id: int, row_number: int, reason: str | None
) -> RowFix:
    """Take a valid row out of a batch awaiting approval, with a reason; commits."""
    batch, subject = _fixable_row(session, actor=actor, batch_id=batch_id, row_number=row_number)
    if subject.classification != RowClass.VALID:
        raise batches.WrongState(
            f"Row {row_number} is {batches.state_label(subject.classification)}: it is never "
            "sent, so there is nothing to exclude. Nothing changed."
        )
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_EXCLUSION_REASON:
        raise batches.BatchError(
            f"Give the reason for excluding row {row_number} (1 to {MAX_EXCLUSION_REASON} "
            "characters); nothing changed."
        )
    subject.classification = RowClass.EXCLUDED.value
    subject.state = SubjectState.SKIPPED.value
    subject.problem = f"excluded in the preview: {reason}"
    return _finish(
        session,
        actor=actor,
        batch=batch,
        subject=subject,
        before=RowClass.VALID.value,
        details={"action": "batch.row_excluded", "reason_length": len(reason)},
    )


def _checked_value(row_number: int, kind: str | None, value: str | None) -> rows.Row:
    """The corrected identifier by the upload's rules, or the reason it is refused."""
    if kind not in KINDS:
        raise batches.BatchError("Choose user_id or identity for the corrected value.")
    if not (value or "").strip():
        raise batches.BatchError(f"Type the corrected {kind}; nothing changed.")
    checked = rows.read_identifier(row_number, kind, value)
    if checked.classification != RowClass.VALID:
        raise batches.BatchError(
            f"The corrected {kind} is not usable: {checked.problem}. Nothing changed."
        )
    return checked


def _classify(session: Session, batch: Batch, subject: Subject, fingerprint: str, kind: str):
    """(classification, problem) of the corrected row, as the upload would have found."""
    first = session.exec(
        select(sa.func.min(Subject.row_number)).where(
            Subject.batch_id == batch.id,
            Subject.id != subject.id,
            Subject.fingerprint == fingerprint,
            Subject.classification.in_(HOLDERS),
        )
    ).one()
    if first is not None:
        return RowClass.DUPLICATE.value, f"the same {kind} as row {first}"
    earlier = subject_store.already_requested(session, batch.environment_id, {fingerprint})
    if fingerprint in earlier:
        return (
            RowClass.ALREADY_REQUESTED.value,
            f"already requested in batch {earlier[fingerprint]}",
        )
    return RowClass.VALID.value, None


def correct_row(
    session: Session,
    *,
    actor: str,
    batch_id: int,
    row_number: int,
    kind: str | None,
    value: str | None,
) -> RowFix:
    """Replace a malformed row's identifier in a batch awaiting approval; commits."""
    batch, subject = _fixable_row(session, actor=actor, batch_id=batch_id, row_number=row_number)
    if subject.classification != RowClass.MALFORMED:
        raise batches.WrongState(
            f"Row {row_number} is not malformed, so there is nothing to correct; exclude it "
            "instead if it must not be sent. Nothing changed."
        )
    checked = _checked_value(row_number, kind, value)
    fingerprint = crypto.subject_fingerprint(checked.kind, checked.value)
    classification, problem = _classify(session, batch, subject, fingerprint, checked.kind)
    note = "corrected in the preview"
    subject.kind, subject.fingerprint = checked.kind, fingerprint
    subject.identifier_encrypted = crypto.encrypt(checked.value)
    subject.classification, subject.problem = classification, problem
    subject.state = (
        SubjectState.PENDING.value
        if classification == RowClass.VALID
        else SubjectState.SKIPPED.value
    )
    subject.warning = (f"{note}; {subject.warning}" if subject.warning else note)[:MAX_FIELD]
    return _finish(
        session,
        actor=actor,
        batch=batch,
        subject=subject,
        before=RowClass.MALFORMED.value,
        details={"action": "batch.row_corrected", "kind": checked.kind},
    )
