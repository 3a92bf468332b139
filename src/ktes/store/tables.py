"""The store's schema: per task, a narrow row of the columns listing filters and sorts on, its document as
JSON text in a table of its own (so scans over ``tasks`` stay cheap), and its tags.

Migrations under ``migrations/versions`` create exactly these tables; keep the two in step.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: Names compare byte by byte (``name_prefix`` is case-sensitive and uses a range scan on the index).
NameText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
#: Ids too (lowercase ASCII, the same order in any collation, but cheaper compared as bytes: migration 0006).
IdText = sa.String(40).with_variant(sa.String(40, collation="C"), "postgresql")

tasks = sa.Table(
    "tasks",
    metadata,
    # Time-ordered ids (ktes.tes.ids): "newest first" is "id descending", and the id is the page cursor.
    sa.Column("id", IdText, primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("name", NameText, nullable=True),
    sa.Column("creation_time", sa.String(40), nullable=False),
    # Who created the task (NULL: stored while auth was off; such tasks are the admins' only).
    sa.Column("owner", sa.Text, nullable=True),
    sa.Index("ix_tasks_state_id", "state", "id"),
    # A user's own tasks in id order (keyset paging), state too so a MINIMAL page is read from the index alone
    sa.Index("ix_tasks_owner_id_state", "owner", "id", "state"),
    # The owners with QUEUED tasks and each one's oldest (fair dispatch), and a user's active tasks (limit)
    sa.Index("ix_tasks_state_owner_id", "state", "owner", "id"),
    # state too, so a MINIMAL page filtered by name is read from the index alone
    sa.Index("ix_tasks_name_id_state", "name", "id", "state"),
    # SQLite: rows clustered by id, so an id lookup is one b-tree search and a scan in id order reads rows
    sqlite_with_rowid=False,
)

#: The task document (ktes.tes.models.dump), kept in step with ``tasks.state`` in every transaction, and its
#: BASIC view (ktes.tes.views) when that differs from the document (else NULL).
task_docs = sa.Table(
    "task_docs",
    metadata,
    sa.Column("task_id", IdText, sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    # basic first: SQLite reaches a column only through the ones before it (migration 0003)
    sa.Column("basic", sa.Text, nullable=True),
    sa.Column("doc", sa.Text, nullable=False),
    # PostgreSQL compresses a row above 2 KB (a typical task), and every page of BASIC or FULL tasks would then
    # be decompressed row by row: keep rows up to a page uncompressed and inline.
    postgresql_with={"toast_tuple_target": 8160},
)

task_tags = sa.Table(
    "task_tags",
    metadata,
    sa.Column("task_id", IdText, sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    # Both hold task ids in order within a key (and value), so a tag filter reads a page without sorting.
    sa.Index("ix_task_tags_key_value_task", "key", "value", "task_id"),
    sa.Index("ix_task_tags_key_task", "key", "task_id"),
    sqlite_with_rowid=False,
)

#: Fair shares: when each owner last had a task dispatched (left QUEUED for INITIALIZING), as a serial number
#: that grows with every dispatch (one higher than the highest so far; no clock involved). Tasks of no owner
#: (stored while auth was off) count as the owner "" (no user has that name). Read for the owners with queued
#: tasks only; one row per owner ever served, kept when their tasks are deleted.
owner_dispatches = sa.Table(
    "owner_dispatches",
    metadata,
    sa.Column("owner", sa.Text, primary_key=True),
    sa.Column("last_dispatch", sa.BigInteger, nullable=False),
    # the highest serial so far (the next dispatch's is one more) is one index seek, however many owners
    sa.Index("ix_owner_dispatches_last", "last_dispatch"),
    sqlite_with_rowid=False,
)
