"""Rewrite stored task documents in their complete form (:func:`ktes.tes.views.complete`).

Older ktes versions left out empty arrays and maps (``inputs``, ``tags``, ...) and an input's or output's
default ``type``; clients that index them without looking failed on those tasks. Reads serve the stored text
as it is, so the stored text is made right once, here, and every read stays a plain fetch. Documents already
complete are left alone; the BASIC copy is rewritten with the document.

Revision ID: 0002_complete
Revises: 0001
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

from ktes.tes import views

revision = "0002_complete"
down_revision = "0001"
branch_labels = None
depends_on = None

#: Documents read and written per round.
BATCH = 1000


def upgrade() -> None:
    conn = op.get_bind()
    select = sa.text("SELECT task_id, doc FROM task_docs WHERE task_id > :after ORDER BY task_id LIMIT :n")
    update = sa.text("UPDATE task_docs SET doc = :doc, basic = :basic WHERE task_id = :task_id")
    after = ""
    while True:
        rows = conn.execute(select, {"after": after, "n": BATCH}).all()
        if not rows:
            return
        changed = []
        for task_id, text in rows:
            doc = orjson.dumps(views.complete(orjson.loads(text)))
            if doc != text.encode():
                basic = views.basic_json(doc)
                stored_basic = None if basic is doc else basic.decode()
                changed.append({"task_id": task_id, "doc": doc.decode(), "basic": stored_basic})
        if changed:
            conn.execute(update, changed)
        after = rows[-1][0]


def downgrade() -> None:
    """Complete documents are valid for older versions too: nothing to undo."""
