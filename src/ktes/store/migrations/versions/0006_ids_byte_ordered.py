"""PostgreSQL: task ids compare byte by byte (``COLLATE "C"``), as they already do on SQLite.

Ids are lowercase ASCII (ktes.tes.ids), so their order is the same in every collation, but a column in the
database's default collation (often ``en_US.UTF-8``, or ``C.UTF-8``, which PostgreSQL does not treat as
plain bytes) compares them through the C library's ``strcoll``: every index search by id, every join on it
and every sort of a page by id paid for it. Measured on 1,000,000 tasks: a page filtered by a 1 % name
prefix (a top-N sort of 10,000 ids) went from 4.6 to 3.0 ms in the database.

Only the indexes that hold ids are rebuilt, and the foreign keys checked again (the type stays
``varchar(40)``, so no row is rewritten): about 7 s for 1,000,000 tasks on 2 cores.

Revision ID: 0006_ids_byte_ordered
Revises: 0005_owner_dispatches
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_ids_byte_ordered"
down_revision = "0005_owner_dispatches"
branch_labels = None
depends_on = None

_ID_COLUMNS = [("tasks", "id"), ("task_docs", "task_id"), ("task_tags", "task_id")]


def upgrade() -> None:
    _set_collation("C")


def downgrade() -> None:
    _set_collation(None)  # the database's default


def _set_collation(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":  # SQLite compares text byte by byte already
        return
    for table, column in _ID_COLUMNS:
        op.alter_column(table, column, type_=sa.String(40, collation=collation), existing_nullable=False)
