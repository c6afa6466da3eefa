"""evidence: signed audit checkpoints, and an index for the retention purge

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 05:42:35.734638
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate renders sqlmodel.sql.sqltypes.AutoString; PITFALLS.md #9)
import webapp.models  # noqa: F401  (custom column types such as UTCDateTime)


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('signature', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('key_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('public_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_checkpoints')),
    sa.UniqueConstraint('seq', name=op.f('uq_audit_checkpoints_seq'))
    )
    # Not a batch operation: CREATE INDEX needs no table rebuild, so the subjects table (and
    # nothing else) is left as it is.
    op.create_index('ix_subjects_completed_at', 'subjects', ['completed_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_subjects_completed_at', table_name='subjects')
    op.drop_table('audit_checkpoints')
