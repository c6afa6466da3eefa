"""Every table of the desk. Schema changes go through Alembic (alembic/versions)."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

# Alembic's batch mode on SQLite recreates tables and needs named constraints to do it.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Ids are INTEGER columns (int4 on PostgreSQL): a larger number in a URL would overflow the driver.
MAX_ID = 2**31 - 1


def utcnow() -> datetime:
    """The current time, tz-aware UTC, to the microsecond."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always read back tz-aware (SQLite forgets the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use tz-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def at_column(*, nullable: bool = True, index: bool = False) -> sa.Column:
    """A tz-aware UTC `*_at` column."""
    return sa.Column(UTCDateTime(), nullable=nullable, index=index)


class Role(enum.StrEnum):
    """What a person may do; each role includes the ones before it."""

    AUDITOR = "auditor"
    OFFICER = "officer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """True when this role includes `needed`."""
        return self.rank >= Role(needed).rank


class Region(enum.StrEnum):
    """Heap's data centres."""

    US = "us"
    EU = "eu"


# --- accounts ---------------------------------------------------------------------------


class User(SQLModel, table=True):
    """A person who signs in to the desk."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, sa_column_kwargs={"unique": True})
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=16)
    is_active: bool = Field(default=True)
    failed_logins: int = Field(default=0)
    locked_until: datetime | None = Field(default=None, sa_column=at_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False))
    password_changed_at: datetime | None = Field(default=None, sa_column=at_column())
    last_login_at: datetime | None = Field(default=None, sa_column=at_column())
    # Who created this account (None: the first admin, or created from the command line).
    # Four-eyes never lets an account approve the work of its creator or its creations.
    created_by: int | None = Field(default=None, foreign_key="users.id")

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def is_locked(self, now: datetime) -> bool:
        """True while a lockout after repeated failed logins is in force."""
        return self.locked_until is not None and self.locked_until > now


class LoginSession(SQLModel, table=True):
    """A server-side session; the cookie carries only its random token (PITFALLS.md #1)."""

    __tablename__ = "login_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    user_id: int = Field(foreign_key="users.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False))
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False))
    expires_at: datetime = Field(sa_column=at_column(nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=at_column())
    revoked_reason: str | None = Field(default=None, max_length=64)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=255)


class ApiToken(SQLModel, table=True):
    """A bearer token for /api/v1, stored as a SHA-256 hash and shown only once."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    prefix: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=at_column())
    revoked_at: datetime | None = Field(default=None, sa_column=at_column())
    revoked_reason: str | None = Field(default=None, max_length=64)
    scope: str = Field(default="write", max_length=8)  # read | write
    expires_at: datetime | None = Field(default=None, sa_column=at_column())


class LoginAttempt(SQLModel, table=True):
    """One sign-in attempt, kept for per-IP throttling shared by every worker (PITFALLS.md #11)."""

    __tablename__ = "login_attempts"
    __table_args__ = (sa.Index("ix_login_attempts_ip_at", "ip", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False, index=True))
    ip: str = Field(max_length=64)
    email_fingerprint: str = Field(max_length=64)
    succeeded: bool = Field(default=False)


# --- Heap environments ------------------------------------------------------------------


class Environment(SQLModel, table=True):
    """A Heap environment the desk works on; its deletion API key is encrypted at rest."""

    __tablename__ = "environments"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, sa_column_kwargs={"unique": True})
    app_id: str = Field(max_length=20)
    region: str = Field(default=Region.US.value, max_length=2)
    base_url: str | None = Field(default=None, max_length=500)
    main_production: bool = Field(default=False)
    api_key_encrypted: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    api_key_fingerprint: str | None = Field(default=None, max_length=64)
    api_key_set_at: datetime | None = Field(default=None, sa_column=at_column())
    account_property: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False))
    last_connection_ok_at: datetime | None = Field(default=None, sa_column=at_column())


class EnvironmentPolicy(SQLModel, table=True):
    """Which Heap operations the desk offers for an environment, and the guardrails on them.

    The JSON columns hold `operations` ({operation: bool}), `forbidden_property_keys` ([name or
    glob pattern]) and `descriptions` ({operation: text}); webapp.tool_policy reads and checks
    them. An environment without a row has the defaults for its kind.
    """

    __tablename__ = "environment_policies"

    environment_id: int = Field(foreign_key="environments.id", primary_key=True)
    operations: str = Field(default="{}", sa_column=sa.Column(sa.Text(), nullable=False))
    corrections_four_eyes_above: int | None = Field(default=None)
    max_items: int
    forbidden_property_keys: str = Field(
        default="[]", sa_column=sa.Column(sa.Text(), nullable=False)
    )
    descriptions: str = Field(default="{}", sa_column=sa.Column(sa.Text(), nullable=False))
    updated_by: str | None = Field(default=None, max_length=254)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False))


# --- audit trail ------------------------------------------------------------------------


class AuditEntry(SQLModel, table=True):
    """One link of the append-only, hash-chained audit trail (format fixed by DESIGN.md)."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        sa.Index("ix_audit_entries_target", "target_type", "target_id", "seq"),
        sa.Index("ix_audit_entries_actor_seq", "actor", "seq"),
        sa.Index("ix_audit_entries_action_seq", "action", "seq"),
        sa.Index("ix_audit_entries_at", "at"),
    )

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    # `at` is kept as the exact ISO 8601 text that was hashed, so verification never depends
    # on how a database rounds or re-zones a timestamp.
    at: str = Field(max_length=32)
    actor: str = Field(max_length=254)
    action: str = Field(max_length=64)
    target_type: str = Field(max_length=32)
    target_id: str = Field(max_length=64)
    details: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})


# --- scheduling ---------------------------------------------------------------------------


class SchedulerLease(SQLModel, table=True):
    """The lease that elects the one scheduler allowed to work (PITFALLS.md #13)."""

    __tablename__ = "scheduler_leases"

    name: str = Field(primary_key=True, max_length=32)
    holder: str = Field(max_length=128)
    # Grows each time the holder changes: work stamped with an older token is stale.
    fencing_token: int = Field(default=1)
    acquired_at: datetime = Field(sa_column=at_column(nullable=False))
    renewed_at: datetime = Field(sa_column=at_column(nullable=False))
    expires_at: datetime = Field(sa_column=at_column(nullable=False))
    last_tick_at: datetime | None = Field(default=None, sa_column=at_column())


# --- erasure workflow ---------------------------------------------------------------------


class BatchState(enum.StrEnum):
    """Where a batch of erasure requests stands."""

    AWAITING_APPROVAL = "awaiting_approval"  # uploaded and validated; nothing sent
    REJECTED = "rejected"  # the second person said no (with a reason)
    CANCELLED = "cancelled"  # withdrawn before submission
    APPROVED = "approved"  # queued for submission
    SUBMITTING = "submitting"  # chunks are being sent to Heap
    WAITING_RETRY = "waiting_retry"  # Heap said 429/5xx; a retry is scheduled
    POLLING = "polling"  # every chunk accepted; waiting for Heap to complete
    COMPLETE = "complete"  # Heap reported every request complete
    FAILED = "failed"  # a chunk was refused for good (400); retry after correction

    @property
    def open(self) -> bool:
        return self not in {BatchState.REJECTED, BatchState.CANCELLED, BatchState.COMPLETE}


class RowClass(enum.StrEnum):
    """How an uploaded row was classified."""

    VALID = "valid"
    MALFORMED = "malformed"
    DUPLICATE = "duplicate"  # the same subject earlier in the same file
    ALREADY_REQUESTED = "already_requested"  # an earlier batch of this environment holds it
    EXCLUDED = "excluded"  # taken out in the preview by its uploader, with a reason (issue 15)


class SubjectState(enum.StrEnum):
    """A valid subject's progress through Heap."""

    PENDING = "pending"  # not sent yet
    SUBMITTED = "submitted"  # in a Heap request that is not complete yet
    COMPLETE = "complete"
    FAILED = "failed"
    SKIPPED = "skipped"  # not a valid row: never sent


class ChunkState(enum.StrEnum):
    """A Heap deletion request (a chunk of ≤ 10,000 subjects) on its way."""

    QUEUED = "queued"  # intent committed; to be sent (or re-sent after an unknown outcome)
    SENDING = "sending"  # committed just before the POST: found so after a crash = unknown
    WAITING_RETRY = "waiting_retry"  # 429/5xx: next_attempt_at says when
    ACCEPTED = "accepted"  # Heap answered 201; its deletion_request_id is stored
    COMPLETE = "complete"
    FAILED = "failed"  # Heap refused the request for good (400)


class Batch(SQLModel, table=True):
    """One uploaded list of data subjects for one Heap environment."""

    __tablename__ = "batches"
    __table_args__ = (sa.Index("ix_batches_state_created", "state", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    environment_id: int = Field(foreign_key="environments.id", index=True)
    state: str = Field(default=BatchState.AWAITING_APPROVAL.value, max_length=24)
    source: str = Field(default="file", max_length=8)  # file | paste | api
    filename: str | None = Field(default=None, max_length=255)
    file_sha256: str = Field(max_length=64)
    received_on: date = Field(sa_column=sa.Column(sa.Date(), nullable=False))
    reference: str | None = Field(default=None, max_length=255)
    rows_total: int = Field(default=0)
    valid_count: int = Field(default=0)
    malformed_count: int = Field(default=0)
    duplicate_count: int = Field(default=0)
    already_requested_count: int = Field(default=0)
    completed_count: int = Field(default=0)
    uploaded_by: int = Field(foreign_key="users.id")
    approved_by: int | None = Field(default=None, foreign_key="users.id")
    approved_at: datetime | None = Field(default=None, sa_column=at_column())
    rejected_by: int | None = Field(default=None, foreign_key="users.id")
    rejected_at: datetime | None = Field(default=None, sa_column=at_column())
    rejection_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    cancelled_by: int | None = Field(default=None, foreign_key="users.id")
    cancelled_at: datetime | None = Field(default=None, sa_column=at_column())
    cancel_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    # The manifest: how many subjects would be sent and SHA-256 of their sorted fingerprints.
    manifest_count: int = Field(default=0)
    manifest_sha256: str | None = Field(default=None, max_length=64)
    # The manifest the approver saw and approved; submission sends exactly that set.
    approved_manifest_sha256: str | None = Field(default=None, max_length=64)
    # Why a batch came back to awaiting approval (its set to send changed), in words.
    reapproval_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    created_at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False))
    submitted_at: datetime | None = Field(default=None, sa_column=at_column())
    completed_at: datetime | None = Field(default=None, sa_column=at_column())
    next_attempt_at: datetime | None = Field(default=None, sa_column=at_column(index=True))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))

    @property
    def excluded_count(self) -> int:
        """Rows taken out in the preview: every row is in exactly one classification."""
        classified = (
            self.valid_count
            + self.malformed_count
            + self.duplicate_count
            + self.already_requested_count
        )
        return self.rows_total - classified


class Subject(SQLModel, table=True):
    """One row of an upload: a data subject (identifier encrypted, fingerprint for lookups)."""

    __tablename__ = "subjects"
    __table_args__ = (
        sa.Index("ix_subjects_env_fingerprint", "environment_id", "fingerprint"),
        sa.Index("ix_subjects_batch_row", "batch_id", "row_number"),
        sa.Index("ix_subjects_due", "state", "due_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="batches.id")
    environment_id: int = Field(foreign_key="environments.id")
    row_number: int
    kind: str | None = Field(default=None, max_length=8)  # user_id | identity
    fingerprint: str | None = Field(default=None, max_length=64, index=True)
    identifier_encrypted: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    classification: str = Field(max_length=20)
    problem: str | None = Field(default=None, max_length=500)
    warning: str | None = Field(default=None, max_length=500)
    received_on: date = Field(sa_column=sa.Column(sa.Date(), nullable=False))
    reference: str | None = Field(default=None, max_length=255)
    due_on: date = Field(sa_column=sa.Column(sa.Date(), nullable=False))
    extension_months: int = Field(default=0)
    extension_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    subject_informed_on: date | None = Field(default=None, sa_column=sa.Column(sa.Date()))
    extension_recorded_on: date | None = Field(default=None, sa_column=sa.Column(sa.Date()))
    state: str = Field(default=SubjectState.PENDING.value, max_length=12)
    heap_request_id: int | None = Field(default=None, foreign_key="heap_requests.id", index=True)
    submitted_at: datetime | None = Field(default=None, sa_column=at_column())
    completed_at: datetime | None = Field(default=None, sa_column=at_column())
    purged_at: datetime | None = Field(default=None, sa_column=at_column())


class HeapRequest(SQLModel, table=True):
    """A chunk of a batch sent to Heap's user_deletion API (≤ 10,000 users)."""

    __tablename__ = "heap_requests"
    __table_args__ = (
        sa.UniqueConstraint("batch_id", "chunk_index"),
        sa.Index("ix_heap_requests_state_next", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="batches.id", index=True)
    chunk_index: int
    subject_count: int
    payload_sha256: str = Field(max_length=64)
    state: str = Field(default=ChunkState.QUEUED.value, max_length=16)
    deletion_request_id: str | None = Field(default=None, max_length=64)
    heap_status: str | None = Field(default=None, max_length=64)
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    next_attempt_at: datetime | None = Field(default=None, sa_column=at_column())
    sent_at: datetime | None = Field(default=None, sa_column=at_column())
    accepted_at: datetime | None = Field(default=None, sa_column=at_column())
    last_polled_at: datetime | None = Field(default=None, sa_column=at_column())
    next_poll_at: datetime | None = Field(default=None, sa_column=at_column(index=True))
    poll_failures: int = Field(default=0)
    stale: bool = Field(default=False)
    completed_at: datetime | None = Field(default=None, sa_column=at_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False))


class HeapDeletionId(SQLModel, table=True):
    """Every deletion_request_id Heap ever returned for a chunk: none is ever lost."""

    __tablename__ = "heap_deletion_ids"

    id: int | None = Field(default=None, primary_key=True)
    heap_request_id: int = Field(foreign_key="heap_requests.id", index=True)
    deletion_request_id: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    location: str | None = Field(default=None, max_length=500)
    attempt: int = Field(default=1)
    status: str = Field(default="pending", max_length=64)
    accepted_at: datetime = Field(sa_column=at_column(nullable=False))
    last_polled_at: datetime | None = Field(default=None, sa_column=at_column())
    completed_at: datetime | None = Field(default=None, sa_column=at_column())


# --- corrections --------------------------------------------------------------------------


class CorrectionOperation(enum.StrEnum):
    """The Heap write operations an officer can make by hand."""

    IDENTIFY = "identify"
    USER_PROPERTIES = "user_properties"
    USER_PROPERTIES_BULK = "user_properties_bulk"
    ACCOUNT_PROPERTIES = "account_properties"
    ACCOUNT_PROPERTIES_BULK = "account_properties_bulk"
    LINK_ACCOUNT = "link_account"
    TRACK = "track"
    TRACK_WITH_USER_PROPERTIES = "track_with_user_properties"
    TRACK_BULK = "track_bulk"


class CorrectionState(enum.StrEnum):
    """Where a correction stands; `sending` is committed before the first Heap call."""

    AWAITING_APPROVAL = "awaiting_approval"  # the policy's four-eyes: a second officer approves
    REJECTED = "rejected"  # refused by the second officer; nothing was sent
    SENDING = "sending"  # found so long after it began: the desk stopped mid-way (retry it)
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # some calls accepted, some not
    FAILED = "failed"


class CallState(enum.StrEnum):
    """One Heap call of a correction."""

    PENDING = "pending"  # not sent yet (or skipped after an earlier call failed)
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Correction(SQLModel, table=True):
    """A hand-made Heap write: the desk's record is the only history Heap keeps of it."""

    __tablename__ = "corrections"
    __table_args__ = (
        sa.Index("ix_corrections_env_identity_fp", "environment_id", "identity_fingerprint"),
        sa.Index("ix_corrections_env_user_id_fp", "environment_id", "user_id_fingerprint"),
        sa.Index("ix_corrections_operation_id", "operation", "id"),
        sa.Index("ix_corrections_actor_id", "actor", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    environment_id: int = Field(foreign_key="environments.id", index=True)
    operation: str = Field(max_length=32)
    state: str = Field(default=CorrectionState.SENDING.value, max_length=24)
    actor: str = Field(max_length=254)
    item_count: int = Field(default=1)
    call_count: int = Field(default=1)
    # Single-person operations keep the fingerprints queryable (identify warnings, lookups);
    # every operation lists all its subjects' fingerprints in subject_fingerprints (JSON).
    identity_fingerprint: str | None = Field(default=None, max_length=64)
    user_id_fingerprint: str | None = Field(default=None, max_length=64)
    subject_fingerprints: str = Field(default="[]", sa_column=sa.Column(sa.Text(), nullable=False))
    warnings: str = Field(default="[]", sa_column=sa.Column(sa.Text(), nullable=False))
    warnings_confirmed: bool = Field(default=False)
    override_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    guarded_count: int = Field(default=0)
    heap_status: int | None = Field(default=None)
    heap_message: str | None = Field(default=None, max_length=500)
    attempts: int = Field(default=1)
    created_at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False))
    started_at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False))
    completed_at: datetime | None = Field(default=None, sa_column=at_column())
    # Four-eyes (the environment's tool policy): who asked, and who decided, with what reason.
    author_id: int | None = Field(default=None, foreign_key="users.id")
    approval_required: bool = Field(default=False)
    decided_by: str | None = Field(default=None, max_length=254)
    decided_at: datetime | None = Field(default=None, sa_column=at_column())
    decision_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))


class CorrectionCall(SQLModel, table=True):
    """One HTTP call of a correction: the exact body sent (encrypted) and Heap's answer."""

    __tablename__ = "correction_calls"
    __table_args__ = (sa.UniqueConstraint("correction_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    # The unique (correction_id, position) constraint's index serves lookups by correction.
    correction_id: int = Field(foreign_key="corrections.id")
    position: int
    operation: str = Field(max_length=40)
    url: str = Field(max_length=500)
    item_count: int = Field(default=1)
    body_encrypted: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    body_sha256: str = Field(max_length=64)
    state: str = Field(default=CallState.PENDING.value, max_length=16)
    heap_status: int | None = Field(default=None)
    heap_message: str | None = Field(default=None, max_length=500)
    attempts: int = Field(default=0)
    sent_at: datetime | None = Field(default=None, sa_column=at_column())
    completed_at: datetime | None = Field(default=None, sa_column=at_column())


# --- two-factor ---


class UserTotp(SQLModel, table=True):
    """A person's TOTP authenticator (RFC 6238): the secret encrypted, and the last step used."""

    __tablename__ = "user_totp"

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    secret_encrypted: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False))
    # None while enrolment waits for its first code; set once the person proved the app works.
    confirmed_at: datetime | None = Field(default=None, sa_column=at_column())
    # The time-step of the last accepted code: a code is usable once (replay refusal).
    last_used_step: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))


class RecoveryCode(SQLModel, table=True):
    """A single-use recovery code, stored only as its keyed SHA-256 (HMAC) fingerprint."""

    __tablename__ = "recovery_codes"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    code_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=at_column())


# --- evidence -----------------------------------------------------------------------------


class AuditTreeNode(SQLModel, table=True):
    """One stored hash of the audit trail's Merkle tree (RFC 9162 §2.1): a perfect subtree.

    Node (level, idx) covers leaves [idx·2^level, (idx+1)·2^level); leaf i is entry seq i+1.
    Written in the same transaction as the entries, so every root and proof comes from
    O(log n) rows (webapp/trail/tree.py), never from a scan of the trail.
    """

    __tablename__ = "audit_tree_nodes"

    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(sa_column=sa.Column(sa.BigInteger(), primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=sa.Column(sa.LargeBinary(32), nullable=False))


class AuditTreeHead(SQLModel, table=True):
    """A signed tree head (STH): the desk's Ed25519 signature over the tree's size and root.

    Kept in a table of its own, not as an audit entry: an entry would grow the log it signs
    (PITFALLS.md #19). Shapes as in DESIGN.md, "Transparency log".
    """

    __tablename__ = "audit_tree_heads"

    id: int | None = Field(default=None, primary_key=True)
    tree_size: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False, unique=True))
    root_hash: str = Field(max_length=64)  # lower-case hex
    # The exact ISO 8601 text that was signed, like AuditEntry.at.
    timestamp: str = Field(max_length=32)
    key_id: str = Field(max_length=64)  # hex SHA-256 of the raw public key
    signature: str = Field(max_length=128)  # base64 of the 64-byte Ed25519 signature
    tsa_token: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement that the audit chain had head `hash` at `seq` (Ed25519)."""

    __tablename__ = "audit_checkpoints"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(sa_column_kwargs={"unique": True})
    hash: str = Field(max_length=64)
    # The exact ISO 8601 text that was signed, like AuditEntry.at.
    at: str = Field(max_length=32)
    signature: str = Field(max_length=128)  # hex of the 64-byte Ed25519 signature
    key_id: str = Field(max_length=64)  # SHA-256 of the raw public key, hex
    public_key: str = Field(max_length=64)  # the raw 32-byte public key, hex
    actor: str = Field(max_length=254)


# --- notifications ------------------------------------------------------------------------


class NotificationKind(enum.StrEnum):
    """What a notification tells its person (webapp.notifications decides who gets which)."""

    BATCH_AWAITS_APPROVAL = "batch_awaits_approval"
    BATCH_REJECTED = "batch_rejected"
    BATCH_FAILED = "batch_failed"
    BATCH_COMPLETED = "batch_completed"
    DEADLINE_AT_RISK = "deadline_at_risk"
    CORRECTION_AWAITS_APPROVAL = "correction_awaits_approval"


class MailState(enum.StrEnum):
    """Whether a notification's e-mail went out (the outbox the mail job works through)."""

    PENDING = "pending"
    SENT = "sent"
    SKIPPED = "skipped"  # the person's preferences say no, or it was too old to mail


class Notification(SQLModel, table=True):
    """One message in a person's inbox; the text names batches and counts, never a subject."""

    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index("ix_notifications_user_id_id", "user_id", "id"),
        sa.Index("ix_notifications_mail_state_id", "mail_state", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id")
    kind: str = Field(max_length=40)
    batch_id: int | None = Field(default=None, foreign_key="batches.id")
    correction_id: int | None = Field(default=None, foreign_key="corrections.id")
    text: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False))
    read_at: datetime | None = Field(default=None, sa_column=at_column())
    mail_state: str = Field(default=MailState.PENDING.value, max_length=16)
    mailed_at: datetime | None = Field(default=None, sa_column=at_column())


class NotificationPreference(SQLModel, table=True):
    """A person's choice to get one kind of notification by e-mail (no row: the default)."""

    __tablename__ = "notification_preferences"

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    kind: str = Field(max_length=40, primary_key=True)
    email: bool
    updated_at: datetime = Field(default_factory=utcnow, sa_column=at_column(nullable=False))


# The retention purge looks for subjects completed before a cutoff.
sa.Index("ix_subjects_completed_at", Subject.__table__.c.completed_at)
