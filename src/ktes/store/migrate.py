"""Bring the database schema up to date with the Alembic migrations in ``migrations/`` (run on every start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
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
