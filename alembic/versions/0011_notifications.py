"""notifications: the in-app inbox, its e-mail outbox, and per-user e-mail preferences

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 16:35:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate renders sqlmodel.sql.sqltypes.AutoString; PITFALLS.md #9)
import webapp.models  # noqa: F401  (custom column types such as UTCDateTime)


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'notifications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('batch_id', sa.Integer(), nullable=True),
        sa.Column('correction_id', sa.Integer(), nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('created_at', webapp.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('read_at', webapp.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('mail_state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('mailed_at', webapp.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['batch_id'], ['batches.id'], name=op.f('fk_notifications_batch_id_batches')
        ),
        sa.ForeignKeyConstraint(
            ['correction_id'], ['corrections.id'],
            name=op.f('fk_notifications_correction_id_corrections'),
        ),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        # A person's inbox, newest first; the mail job's outbox, oldest first.
        batch_op.create_index('ix_notifications_user_id_id', ['user_id', 'id'], unique=False)
        batch_op.create_index('ix_notifications_mail_state_id', ['mail_state', 'id'], unique=False)
    op.create_table(
        'notification_preferences',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('email', sa.Boolean(), nullable=False),
        sa.Column('updated_at', webapp.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_notification_preferences_user_id_users')
        ),
        sa.PrimaryKeyConstraint('user_id', 'kind', name=op.f('pk_notification_preferences')),
    )


def downgrade() -> None:
    op.drop_table('notification_preferences')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_mail_state_id')
        batch_op.drop_index('ix_notifications_user_id_id')
    op.drop_table('notifications')
