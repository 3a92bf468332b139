"""When each owner last had a task dispatched (fair shares that survive a restart).

Revision ID: 0005_owner_dispatches
Revises: 0004_owner
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_owner_dispatches"
down_revision = "0004_owner"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "owner_dispatches",
        sa.Column("owner", sa.Text, primary_key=True),
        sa.Column("last_dispatch", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_owner_dispatches_last", "owner_dispatches", ["last_dispatch"])


def downgrade() -> None:
    op.drop_index("ix_owner_dispatches_last", "owner_dispatches")
    op.drop_table("owner_dispatches")
