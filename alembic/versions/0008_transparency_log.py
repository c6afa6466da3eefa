"""transparency log: the audit trail's Merkle tree nodes and signed tree heads

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 11:00:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate renders sqlmodel.sql.sqltypes.AutoString; PITFALLS.md #9)
from sqlmodel import Session

from webapp.trail import audit, tree


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_tree_nodes',
    sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('level', 'idx', name=op.f('pk_audit_tree_nodes'))
    )
    op.create_table('audit_tree_heads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('root_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('timestamp', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('key_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('signature', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('tsa_token', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_tree_heads')),
    sa.UniqueConstraint('tree_size', name=op.f('uq_audit_tree_heads_tree_size'))
    )
    connection = op.get_bind()
    # The tree of the trail as it stands: every existing entry becomes a leaf, in seq order.
    with Session(bind=connection) as session:
        tree.build(session)
        session.flush()
    # REPLACE / upserts on the trail refused from now on, and the new tables append-only.
    audit.create_triggers(connection)
    audit.create_tree_triggers(connection)


def downgrade() -> None:
    connection = op.get_bind()
    audit.drop_tree_triggers(connection)
    op.drop_table('audit_tree_heads')
    op.drop_table('audit_tree_nodes')
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("DROP TRIGGER IF EXISTS audit_entries_next_seq_only")
    else:
        connection.exec_driver_sql(
            "DROP TRIGGER IF EXISTS audit_entries_next_seq_only ON audit_entries"
        )
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS audit_entries_next_seq_only()")
