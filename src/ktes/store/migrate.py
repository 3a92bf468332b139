"""Bring the database schema up to date with the Alembic migrations in ``migrations/`` (run on every start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"
#: pg_advisory_xact_lock key: replicas starting together migrate one after another.
_PG_LOCK_KEY = 0x6B746573  # "ktes"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine) -> None:
    """Run every migration not yet applied, in one transaction that holds the database's write lock."""
    config = alembic_config()
    writer = engine.execution_options(ktes_write=True)  # BEGIN IMMEDIATE on SQLite
    with writer.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def head_revision() -> str:
    """The newest migration this ktes knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None: no ktes schema yet)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def revisions(url: str) -> tuple[str | None, str]:
    """(the database's revision, this ktes's head) for ``url``, without changing anything."""
    from ktes.store.sql import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        return current_revision(engine), head_revision()
    finally:
        engine.dispose()


def upgrade_url(url: str) -> tuple[str | None, str]:
    """Bring the database at ``url`` to the head; (revision before, revision after)."""
    from ktes.store.sql import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        before = current_revision(engine)
        upgrade(engine)
        return before, head_revision()
    finally:
        engine.dispose()
