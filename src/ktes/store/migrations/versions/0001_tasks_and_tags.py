"""Tasks (indexed columns), their documents, and their tags.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("name", sa.Text().with_variant(sa.Text(collation="C"), "postgresql"), nullable=True),
        sa.Column("creation_time", sa.String(40), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_tasks_state_id", "tasks", ["state", "id"])
    op.create_index("ix_tasks_name_id_state", "tasks", ["name", "id", "state"])
    op.create_table(
        "task_docs",
        sa.Column("task_id", sa.String(40), sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("doc", sa.Text, nullable=False),
        sa.Column("basic", sa.Text, nullable=True),
        postgresql_with={"toast_tuple_target": 8160},  # rows up to a page stay uncompressed (see tables.py)
    )
    op.create_table(
        "task_tags",
        sa.Column("task_id", sa.String(40), sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_task_tags_key_value_task", "task_tags", ["key", "value", "task_id"])
    op.create_index("ix_task_tags_key_task", "task_tags", ["key", "task_id"])


def downgrade() -> None:
    op.drop_table("task_tags")
    op.drop_table("task_docs")
    op.drop_table("tasks")
