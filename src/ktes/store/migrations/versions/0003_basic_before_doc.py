"""SQLite: put ``task_docs.basic`` before ``doc``, so a BASIC read stops before a large document.

SQLite stores a row's columns in order and follows a large value's overflow pages to reach any column after
it: with ``basic`` behind a 15 MiB ``doc``, every BASIC read walked the 15 MiB. The table is rebuilt with
``basic`` first. PostgreSQL keeps large values out of line (TOAST), so its column order does not matter and
it is left as it is.

Revision ID: 0003
Revises: 0002_complete
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002_complete"
branch_labels = None
depends_on = None


def _rebuild(first: str, second: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE TABLE task_docs_new ("
        "task_id VARCHAR(40) NOT NULL PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE, "
        f"{first}, {second})"
    )
    op.execute("INSERT INTO task_docs_new (task_id, basic, doc) SELECT task_id, basic, doc FROM task_docs")
    op.execute("DROP TABLE task_docs")
    op.execute("ALTER TABLE task_docs_new RENAME TO task_docs")


def upgrade() -> None:
    _rebuild("basic TEXT", "doc TEXT NOT NULL")


def downgrade() -> None:
    _rebuild("doc TEXT NOT NULL", "basic TEXT")
