"""Batches of erasure requests: upload, four-eyes approval, rejection, cancellation, retry."""

from __future__ import annotations

from datetime import date
from pathlib import PurePosixPath, PureWindowsPath

import sqlalchemy as sa
from flask import current_app
from sqlmodel import Session

from webapp import tool_policy
from webapp.accounts import four_eyes
from webapp.accounts.users import find_user
from webapp.erasure import deadlines, intake
from webapp.erasure import rows as intake_rows
from webapp.erasure import subjects as subject_store
from webapp.erasure.manifest import Manifest
from webapp.models import Batch, BatchState, Environment, HeapRequest, Role, RowClass, User, utcnow
from webapp.notifications import events as notifications
from webapp.trail import audit

MAX_REASON_LENGTH = 2000
MAX_REFERENCE_LENGTH = 255
# Approved batches may still be withdrawn until the submission job has picked them up.
CANCELLABLE = (BatchState.AWAITING_APPROVAL, BatchState.APPROVED)
RETRYABLE = (BatchState.FAILED, BatchState.WAITING_RETRY)
# Above this many subjects to send, the approver also confirms having checked the preview.
CHECKED_PREVIEW_ABOVE = 1000


class BatchError(ValueError):
    """A batch request that cannot be carried out; the message is for the person."""

    status, code = 400, "invalid"


class BatchNotFound(BatchError):
    status, code = 404, "not_found"


class NotAllowed(BatchError):
    status, code = 403, "forbidden"


class WrongState(BatchError):
    status, code = 409, "conflict"


class NotMainProduction(WrongState):
    """An upload for an environment Heap's deletion API does not take: the environment's
    setting, not the file, stands in the way."""


class SelfApproval(WrongState):
    code = "self_approval"


class DeletionDisabled(NotAllowed):
    """The environment's tool policy switches deletion off."""

    code = "operation_disabled"


class FourEyesRefused(NotAllowed):
    """The approver depends on the uploader (creator, creation) or is too new an account."""

    code = "four_eyes"


SELF_APPROVAL = (
    "You uploaded this batch, so you cannot approve it: a different officer or admin "
    "must check and approve it (four-eyes principle)."
)


def state_label(state: str) -> str:
    """A batch state in words: 'waiting_retry' → 'waiting to retry'."""
    return {"waiting_retry": "waiting to retry"}.get(state, state.replace("_", " "))


def _officer(session: Session, actor: str) -> User:
    """The acting account; only active officers and admins change batches."""
    user = find_user(session, actor)
    if user is None or not user.is_active or not user.role_enum.allows(Role.OFFICER):
        raise NotAllowed("Only officers and admins can change batches.")
    return user


def get_batch(session: Session, batch_id: int) -> Batch:
    """The batch, or BatchNotFound naming the id."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise BatchNotFound(f"There is no batch {batch_id}.")
    return batch


def _environment(session: Session, environment_id: int | None) -> Environment:
    env = session.get(Environment, environment_id) if environment_id else None
    if env is None:
        raise BatchNotFound("Choose the Heap environment the list belongs to.")
    if not env.main_production:
        # Heap's deletion API only accepts Main Production's credentials (heap-api.md).
        raise NotMainProduction(
            f"“{env.name}” is not the Main Production environment: Heap's deletion API only "
            "accepts Main Production's app_id and API key, and one deletion covers every "
            "environment of the account. Upload the list for Main Production."
        )
    _refuse_if_deletion_disabled(session, env)
    return env


def _refuse_if_deletion_disabled(session: Session, env: Environment | None) -> None:
    """The environment's tool policy may switch deletion off (webapp.tool_policy)."""
    if env is not None and (why := tool_policy.refusal(session, env, "deletion")):
        raise DeletionDisabled(why)


def _display_filename(filename: str | None) -> str | None:
    """The file's own name, without any client-side folders."""
    if not filename:
        return None
    name = PureWindowsPath(PurePosixPath(filename).name).name
    # Control characters (a NUL cannot even be stored on PostgreSQL) are no part of a name.
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or None


def _read(
    data: bytes | None, pasted: str | None, paste_kind: str | None, *, received_on, today
) -> intake.Upload:
    """Read the file or the pasted list; a refusal of the whole upload becomes a BatchError."""
    options = {
        "fingerprint_key": current_app.config["DESK_FINGERPRINT_KEY"],
        "received_on": received_on,
        "today": today,
        "max_bytes": current_app.config["DESK_UPLOAD_MAX_BYTES"],
    }
    try:
        if pasted is not None:
            return intake.read_paste(pasted, kind=paste_kind or "", **options)
        if data is not None:
            return intake.read_csv(data, **options)
        raise intake.UploadRefused("Choose a CSV file or paste a list.")
    except intake.NotYetReceived as error:
        raise WrongState(str(error)) from None  # the same list is taken once that day comes
    except intake.UploadRefused as error:
        raise BatchError(str(error)) from None


def create_batch(
    session: Session,
    *,
    actor: str,
    environment_id: int | None,
    data: bytes | None = None,
    pasted: str | None = None,
    paste_kind: str | None = None,
    filename: str | None = None,
    source: str = "file",
    received_on: date | None = None,
    reference: str | None = None,
    today: date | None = None,
) -> tuple[Batch, intake.Upload]:
    """Read, classify and store an upload with its audit entry in one transaction; commits.

    Any file-level problem raises BatchError before anything is written.
    """
    user = _officer(session, actor)
    env = _environment(session, environment_id)
    today = today or deadlines.today_utc()
    received_on = received_on or today
    reference = (reference or "").strip() or None
    if reference and len(reference) > MAX_REFERENCE_LENGTH:
        raise BatchError(f"The reference must be at most {MAX_REFERENCE_LENGTH} characters.")
    upload = _read(data, pasted, paste_kind, received_on=received_on, today=today)
    source = "paste" if pasted is not None else source
    fingerprints = {row.fingerprint for row in upload.rows if row.fingerprint}
    intake_rows.mark_already_requested(
        upload.rows, subject_store.already_requested(session, env.id, fingerprints)
    )
    counts = upload.counts()
    # What approval would let the desk send: the valid rows (DESIGN.md, "Four-eyes on exactly
    # what is sent").
    manifest = Manifest.of(
        row.fingerprint for row in upload.rows if row.classification == RowClass.VALID
    )
    batch = Batch(
        environment_id=env.id,
        source=source,
        filename=_display_filename(filename) if source != "paste" else None,
        file_sha256=upload.sha256,
        received_on=received_on,
        reference=reference,
        rows_total=counts["rows"],
        valid_count=counts[RowClass.VALID],
        malformed_count=counts[RowClass.MALFORMED],
        duplicate_count=counts[RowClass.DUPLICATE],
        already_requested_count=counts[RowClass.ALREADY_REQUESTED],
        manifest_count=manifest.count,
        manifest_sha256=manifest.sha256,
        uploaded_by=user.id,
    )
    session.add(batch)
    session.flush()
    subject_store.insert_subjects(session, batch, upload)
    audit.record(
        session,
        actor=actor,
        action="batch.uploaded",
        target_type="batch",
        target_id=batch.id,
        details={
            "environment_id": env.id,
            "source": source,
            "sha256": upload.sha256,
            "received_on": received_on.isoformat(),
            "counts": counts,
            "manifest": {"count": manifest.count, "sha256": manifest.sha256},
        },
    )
    notifications.batch_awaits_approval(session, batch)
    session.commit()
    return batch, upload


def _transition(session: Session, batch: Batch, allowed, *also, **values) -> None:
    """Move the batch on only if it is still in an allowed state (another worker may race)."""
    result = session.exec(
        sa.update(Batch)
        .where(Batch.id == batch.id, Batch.state.in_([s.value for s in allowed]), *also)
        .values(**values)
        .execution_options(synchronize_session="fetch")
    )
    if result.rowcount != 1:
        session.rollback()
        current = get_batch(session, batch.id)
        raise WrongState(f"Batch {batch.id} is now {state_label(current.state)}; nothing changed.")


def _require_state(batch: Batch, allowed, doing: str) -> None:
    if batch.state not in {s.value for s in allowed}:
        wanted = " or ".join(state_label(s.value) for s in allowed)
        raise WrongState(
            f"Batch {batch.id} is {state_label(batch.state)}; only a batch {wanted} can be {doing}."
        )


def approval_refusal_for(session: Session, *, user_id: int, batch: Batch) -> str | None:
    """Why this account could not approve the batch (four-eyes across accounts), or None.

    For the page, which then offers no Approve button; only an attempt is audited.
    """
    user = session.get(User, user_id)
    if user is None or user.id == batch.uploaded_by:
        return None  # the uploader gets a note of its own
    refusal = four_eyes.approval_refusal(
        session,
        user,
        batch.uploaded_by,
        now=utcnow(),
        min_age_hours=current_app.config.get("DESK_APPROVER_MIN_AGE_HOURS", 0),
        what=f"batch {batch.id}",
    )
    return refusal.message if refusal else None


def _refuse_dependent_approver(session: Session, *, actor: str, user: User, batch: Batch) -> None:
    """Four-eyes across accounts (accounts/four_eyes.py); a refusal is audited and committed."""
    author_id, batch_id = batch.uploaded_by, batch.id
    refusal = four_eyes.approval_refusal(
        session,
        user,
        author_id,
        now=utcnow(),
        min_age_hours=current_app.config.get("DESK_APPROVER_MIN_AGE_HOURS", 0),
        what=f"batch {batch_id}",
    )
    if refusal is None:
        return
    four_eyes.record_refusal(
        session,
        actor=actor,
        refusal=refusal,
        approver_id=user.id,
        author_id=author_id,
        target_type="batch",
        target_id=batch_id,
    )
    if refusal.rule == "uploader":
        raise SelfApproval(SELF_APPROVAL)
    raise FourEyesRefused(refusal.message + " Nothing changed.")


def approve(
    session: Session,
    *,
    actor: str,
    batch_id: int,
    sha256: str | None = None,
    manifest_sha256: str | None = None,
    checked_preview: bool | None = None,
) -> Batch:
    """Four-eyes approval of the batch's manifest (exactly what will be sent); commits.

    `sha256` and `manifest_sha256`, when given, are what the approver saw: the file's hash and
    the manifest's. Either differing from the batch's now means nothing is approved. A batch
    sending more than CHECKED_PREVIEW_ABOVE subjects also needs `checked_preview`.
    """
    user = _officer(session, actor)
    batch = get_batch(session, batch_id)
    _require_state(batch, (BatchState.AWAITING_APPROVAL,), "approved")
    _refuse_dependent_approver(session, actor=actor, user=user, batch=batch)
    _refuse_if_deletion_disabled(session, session.get(Environment, batch.environment_id))
    if sha256 is not None and sha256.strip().lower() != batch.file_sha256:
        raise WrongState("The SHA-256 you confirmed is not this batch's file; nothing changed.")
    if manifest_sha256 is not None and manifest_sha256.strip().lower() != batch.manifest_sha256:
        raise WrongState(
            "The manifest SHA-256 you confirmed is not this batch's: the subjects to send "
            "changed since you looked. Check the batch again; nothing changed."
        )
    if not batch.manifest_count or batch.manifest_sha256 is None:
        raise WrongState("This batch has no valid subject to send; reject or cancel it instead.")
    if batch.manifest_count > CHECKED_PREVIEW_ABOVE and not checked_preview:
        raise BatchError(
            f"This batch sends {batch.manifest_count:,} subjects: confirm that you checked the "
            'preview (tick “I checked the preview”; over the API, send "checked_preview": '
            "true). Nothing changed."
        )
    seen = batch.manifest_sha256
    _transition(
        session,
        batch,
        (BatchState.AWAITING_APPROVAL,),
        Batch.manifest_sha256 == seen,  # the manifest approved is the one checked above
        state=BatchState.APPROVED.value,
        approved_by=user.id,
        approved_at=utcnow(),
        approved_manifest_sha256=seen,
    )
    audit.record(
        session,
        actor=actor,
        action="batch.approved",
        target_type="batch",
        target_id=batch.id,
        details={
            "sha256": batch.file_sha256,
            "valid": batch.valid_count,
            "manifest": {"count": batch.manifest_count, "sha256": seen},
        },
    )
    four_eyes.record_near_misses(
        session,
        actor=actor,
        rules=four_eyes.near_misses(session, user, batch.uploaded_by, now=utcnow()),
        approver_id=user.id,
        author_id=batch.uploaded_by,
        target_type="batch",
        target_id=batch.id,
    )
    session.commit()
    return batch


def reject(session: Session, *, actor: str, batch_id: int, reason: str) -> Batch:
    """The second person says no, with a reason; commits."""
    user = _officer(session, actor)
    batch = get_batch(session, batch_id)
    reason = (reason or "").strip()
    _require_state(batch, (BatchState.AWAITING_APPROVAL,), "rejected")
    if batch.uploaded_by == user.id:
        raise WrongState("You uploaded this batch: to withdraw it, cancel it instead.")
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise BatchError(f"Give the reason for rejecting (1 to {MAX_REASON_LENGTH} characters).")
    _transition(
        session,
        batch,
        (BatchState.AWAITING_APPROVAL,),
        state=BatchState.REJECTED.value,
        rejected_by=user.id,
        rejected_at=utcnow(),
        rejection_reason=reason,
    )
    audit.record(
        session,
        actor=actor,
        action="batch.rejected",
        target_type="batch",
        target_id=batch.id,
        details={"reason": reason},
    )
    notifications.batch_rejected(session, batch, reason=reason)
    session.commit()
    return batch


def _may_cancel(user: User, batch: Batch) -> None:
    """The uploader or an admin; once approved, an admin only (the approver relies on it)."""
    admin = user.role_enum.allows(Role.ADMIN)
    if batch.state == BatchState.APPROVED and not admin:
        raise NotAllowed(
            f"Batch {batch.id} is already approved: only an admin can cancel it now. "
            "Nothing changed."
        )
    if batch.uploaded_by != user.id and not admin:
        raise NotAllowed(
            "Only the officer who uploaded this batch, or an admin, can cancel it. To stop it, "
            "reject it with a reason instead. Nothing changed."
        )


def cancel(session: Session, *, actor: str, batch_id: int, reason: str | None) -> Batch:
    """Withdraw a batch before it is sent, with a reason (the uploader or an admin); commits."""
    user = _officer(session, actor)
    batch = get_batch(session, batch_id)
    _require_state(batch, CANCELLABLE, "cancelled")
    _may_cancel(user, batch)
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise BatchError(
            f"Give the reason for cancelling (1 to {MAX_REASON_LENGTH} characters); "
            "nothing changed."
        )
    sent = session.scalar(
        sa.select(sa.func.count()).select_from(HeapRequest).where(HeapRequest.batch_id == batch.id)
    )
    if sent:
        # A retried batch is `approved` again, but part of it already reached Heap: cancelling
        # it now would leave evidence that says "cancelled" about people Heap deleted.
        raise WrongState(
            f"Batch {batch.id} was already (partly) sent to Heap, so it can no longer be cancelled."
        )
    previous = batch.state
    _transition(
        session,
        batch,
        (BatchState(previous),),  # the permission above was decided for this state
        state=BatchState.CANCELLED.value,
        cancelled_by=user.id,
        cancelled_at=utcnow(),
        cancel_reason=reason,
    )
    audit.record(
        session,
        actor=actor,
        action="batch.cancelled",
        target_type="batch",
        target_id=batch.id,
        details={"from_state": previous, "reason": reason},
    )
    session.commit()
    return batch


def retry(session: Session, *, actor: str, batch_id: int) -> Batch:
    """Send a failed or waiting batch again now (the submission module does the work)."""
    _officer(session, actor)
    batch = get_batch(session, batch_id)
    _require_state(batch, RETRYABLE, "retried")
    # Imported when needed: the submission module builds on this one.
    from webapp.erasure import submission

    try:
        submission.retry_failed(session, actor=actor, batch_id=batch.id)
    except submission.SubmissionError as error:  # the state changed in between
        session.rollback()
        raise WrongState(str(error)) from None
    return session.get(Batch, batch.id, populate_existing=True)
