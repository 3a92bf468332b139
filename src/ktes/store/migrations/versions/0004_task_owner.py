"""Each task's owner (NULL for tasks stored while auth was off), indexed for a user's own listing, the
per-user count and fair dispatch.

Revision ID: 0004_owner
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_owner"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("owner", sa.Text, nullable=True))
    op.create_index("ix_tasks_owner_id_state", "tasks", ["owner", "id", "state"])
    op.create_index("ix_tasks_state_owner_id", "tasks", ["state", "owner", "id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_state_owner_id", "tasks")
    op.drop_index("ix_tasks_owner_id_state", "tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("owner")
