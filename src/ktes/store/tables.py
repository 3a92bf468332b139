"""The store's schema: one row per task (the whole document as JSON text plus indexed columns) and its tags.

Migrations under ``migrations/versions`` create exactly these tables; keep the two in step.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: Names compare byte by byte (``name_prefix`` is case-sensitive and uses a range scan on the index).
NameText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")

tasks = sa.Table(
    "tasks",
    metadata,
    # Time-ordered ids (ktes.tes.ids): "newest first" is "id descending", and the id is the page cursor.
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("name", NameText, nullable=True),
    sa.Column("creation_time", sa.String(40), nullable=False),
    # The task document (ktes.tes.models.dump), kept in step with ``state``.
    sa.Column("doc", sa.Text, nullable=False),
    sa.Index("ix_tasks_state_id", "state", "id"),
    sa.Index("ix_tasks_name_id", "name", "id"),
)

task_tags = sa.Table(
    "task_tags",
    metadata,
    sa.Column("task_id", sa.String(40), sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index("ix_task_tags_key_value_task", "key", "value", "task_id"),
)
