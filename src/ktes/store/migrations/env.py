"""Alembic environment: migrations run on the connection :func:`ktes.store.migrate.upgrade` passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from ktes.store.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through ktes.store.migrate.upgrade (it passes the connection)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
