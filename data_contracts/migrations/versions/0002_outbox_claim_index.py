"""outbox claim index: delivery walks pending replies oldest first instead of sorting them per batch

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_outbox_status_created', 'outbox', ['status', 'created_at', 'outbound_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outbox_status_created', table_name='outbox')
