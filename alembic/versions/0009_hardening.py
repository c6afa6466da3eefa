"""hardening: approval manifests, cancel reasons, account creators, scoped expiring API tokens,
the day an extension was recorded

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 13:00:00
"""

from datetime import UTC, datetime, timedelta

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate renders sqlmodel.sql.sqltypes.AutoString; PITFALLS.md #9)
import webapp.models  # noqa: F401  (custom column types such as UTCDateTime)

from webapp.erasure.deadlines import due_on
from webapp.erasure.manifest import manifest_sha256


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# Tokens issued before expiry existed get the default lifetime from the upgrade on.
LEGACY_TOKEN_DAYS = 90


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('created_by', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_users_created_by_users'), 'users', ['created_by'], ['id']
        )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revoked_reason', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False, server_default='write'))
        batch_op.add_column(sa.Column('expires_at', webapp.models.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancel_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('manifest_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('manifest_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('approved_manifest_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('reapproval_reason', sa.Text(), nullable=True))
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extension_recorded_on', sa.Date(), nullable=True))

    bind = op.get_bind()
    # Auditors' tokens read only; everyone's tokens expire LEGACY_TOKEN_DAYS after the upgrade.
    expires = datetime.now(UTC) + timedelta(days=LEGACY_TOKEN_DAYS)
    bind.execute(
        sa.text(
            "UPDATE api_tokens SET scope = 'read' WHERE user_id IN "
            "(SELECT id FROM users WHERE role = 'auditor')"
        )
    )
    bind.execute(
        sa.table('api_tokens', sa.column('expires_at', webapp.models.UTCDateTime(timezone=True)))
        .update()
        .values(expires_at=expires)
    )
    # Every existing batch's manifest: its valid subjects' fingerprints. Batches already past
    # approval were approved on their counts and file hash; their manifest is what they hold.
    batches = bind.execute(sa.text("SELECT id, state FROM batches")).all()
    for batch_id, state in batches:
        fingerprints = bind.execute(
            sa.text(
                "SELECT fingerprint FROM subjects WHERE batch_id = :batch "
                "AND classification = 'valid' AND fingerprint IS NOT NULL"
            ),
            {"batch": batch_id},
        ).scalars().all()
        digest = manifest_sha256(fingerprints)
        approved = digest if state not in ('awaiting_approval', 'rejected', 'cancelled') else None
        bind.execute(
            sa.text(
                "UPDATE batches SET manifest_count = :count, manifest_sha256 = :digest, "
                "approved_manifest_sha256 = :approved WHERE id = :batch"
            ),
            {"count": len(fingerprints), "digest": digest, "approved": approved, "batch": batch_id},
        )

    _backfill_extension_days(bind)


def _backfill_extension_days(bind) -> None:
    """The day each existing extension was recorded, from the audit trail's own entries.

    The first extension recorded after the first month ended is the one that counts (a later
    one never hides it); otherwise the latest extension's day.
    """
    extended = bind.execute(
        sa.text("SELECT id, received_on FROM subjects WHERE extension_months > 0")
    ).all()
    for subject_id, received_on in extended:
        if isinstance(received_on, str):  # SQLite hands back text
            received_on = datetime.strptime(received_on, "%Y-%m-%d").date()
        days = [
            datetime.fromisoformat(at.replace("Z", "+00:00")).date()
            for at in bind.execute(
                sa.text(
                    "SELECT at FROM audit_entries WHERE action = 'subject.deadline_extended' "
                    "AND target_type = 'subject' AND target_id = :id ORDER BY seq"
                ),
                {"id": str(subject_id)},
            ).scalars()
        ]
        if not days:
            continue
        first_due = due_on(received_on)
        late = [day for day in days if day > first_due]
        bind.execute(
            sa.text("UPDATE subjects SET extension_recorded_on = :day WHERE id = :id"),
            {"day": late[0] if late else days[-1], "id": subject_id},
        )


def downgrade() -> None:
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.drop_column('extension_recorded_on')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('reapproval_reason')
        batch_op.drop_column('approved_manifest_sha256')
        batch_op.drop_column('manifest_sha256')
        batch_op.drop_column('manifest_count')
        batch_op.drop_column('cancel_reason')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
        batch_op.drop_column('scope')
        batch_op.drop_column('revoked_reason')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_users_created_by_users'), type_='foreignkey')
        batch_op.drop_column('created_by')
