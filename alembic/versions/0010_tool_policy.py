"""tool policy per environment; four-eyes for corrections

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 16:10:00
"""

import json

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate renders sqlmodel.sql.sqltypes.AutoString; PITFALLS.md #9)
import webapp.models  # noqa: F401  (custom column types such as UTCDateTime)

from webapp.tool_policy import default_policy


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'environment_policies',
        sa.Column('environment_id', sa.Integer(), nullable=False),
        sa.Column('operations', sa.Text(), nullable=False),
        sa.Column('corrections_four_eyes_above', sa.Integer(), nullable=True),
        sa.Column('max_items', sa.Integer(), nullable=False),
        sa.Column('forbidden_property_keys', sa.Text(), nullable=False),
        sa.Column('descriptions', sa.Text(), nullable=False),
        sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column('updated_at', webapp.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['environment_id'], ['environments.id'],
            name=op.f('fk_environment_policies_environment_id_environments'),
        ),
        sa.PrimaryKeyConstraint('environment_id', name=op.f('pk_environment_policies')),
    )
    with op.batch_alter_table('corrections', schema=None) as batch_op:
        batch_op.alter_column(
            'state',
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=16),
            type_=sqlmodel.sql.sqltypes.AutoString(length=24),
            existing_nullable=False,
        )
        batch_op.add_column(sa.Column('author_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('approval_required', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True))
        batch_op.add_column(sa.Column('decided_at', webapp.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('decision_reason', sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_corrections_author_id_users'), 'users', ['author_id'], ['id']
        )

    bind = op.get_bind()
    # Existing corrections: their author is the account with the actor's e-mail, where it exists.
    bind.execute(
        sa.text(
            "UPDATE corrections SET author_id = "
            "(SELECT id FROM users WHERE users.email = corrections.actor)"
        )
    )
    # Every existing environment gets the defaults a new one of its kind gets.
    policies = sa.table(
        'environment_policies',
        sa.column('environment_id', sa.Integer()),
        sa.column('operations', sa.Text()),
        sa.column('corrections_four_eyes_above', sa.Integer()),
        sa.column('max_items', sa.Integer()),
        sa.column('forbidden_property_keys', sa.Text()),
        sa.column('descriptions', sa.Text()),
        sa.column('updated_at', webapp.models.UTCDateTime(timezone=True)),
    )
    rows = []
    for env_id, main_production in bind.execute(
        sa.text("SELECT id, main_production FROM environments ORDER BY id")
    ):
        policy = default_policy(bool(main_production))
        rows.append({
            'environment_id': env_id,
            'operations': json.dumps(policy.operations, sort_keys=True),
            'corrections_four_eyes_above': policy.corrections_four_eyes_above,
            'max_items': policy.max_items,
            'forbidden_property_keys': '[]',
            'descriptions': json.dumps(policy.descriptions, sort_keys=True),
            'updated_at': webapp.models.utcnow(),
        })
    if rows:
        op.bulk_insert(policies, rows)


def downgrade() -> None:
    with op.batch_alter_table('corrections', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_corrections_author_id_users'), type_='foreignkey')
        batch_op.drop_column('decision_reason')
        batch_op.drop_column('decided_at')
        batch_op.drop_column('decided_by')
        batch_op.drop_column('approval_required')
        batch_op.drop_column('author_id')
        batch_op.alter_column(
            'state',
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=24),
            type_=sqlmodel.sql.sqltypes.AutoString(length=16),
            existing_nullable=False,
        )
    op.drop_table('environment_policies')
