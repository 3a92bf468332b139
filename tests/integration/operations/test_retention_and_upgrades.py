"""Retention (the store's deletion, ``ktes admin purge``) and schema upgrades (``ktes db check|upgrade``) on
SQLite, PostgreSQL and the in-memory store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from alembic import command
from typer.testing import CliRunner

from ktes.cli.main import app
from ktes.engine.retention import parse_age, purge
from ktes.store.base import Store, TaskFilter
from ktes.store.memory import MemoryStore
from ktes.store.migrate import alembic_config, head_revision
from ktes.store.sql import make_engine, open_store
from ktes.tes.ids import new_id, rfc3339
from ktes.tes.models import Executor, State, Task, View
from tests.fixtures.postgres import new_database


def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ktes.db'}"
    postgres_url: str = request.getfixturevalue("postgres_url")
    return new_database(postgres_url)


SQL = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=["memory", *SQL])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_url(request, tmp_path)


@pytest.fixture(params=SQL)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_url(request, tmp_path)


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    opened: Store = MemoryStore() if url == "memory" else open_store(url)
    yield opened
    opened.close()


def new_task(store: Store, *path: State) -> str:
    task_id = store.create(Task(executors=[Executor(image="alpine", command=["true"])], tags={"keep": "me"}))
    for state in path:
        assert store.transition(task_id, state) is not None
    return task_id


def test_purge_removes_finished_tasks_older_than_the_age_and_nothing_else(store: Store) -> None:
    complete = new_task(store, State.INITIALIZING, State.RUNNING, State.COMPLETE)
    canceled = new_task(store, State.CANCELING, State.CANCELED)
    running = new_task(store, State.INITIALIZING, State.RUNNING)
    queued = new_task(store)
    month = parse_age("30d")
    later = datetime.now(UTC) + timedelta(days=31)

    assert asyncio.run(purge(store, month)).task_ids == []  # nothing is a month old yet
    dry = asyncio.run(purge(store, month, dry_run=True, now=later))
    assert sorted(dry.task_ids) == sorted([complete, canceled]) and dry.sentence().startswith("would remove 2")
    assert store.count_by_state()[State.COMPLETE] == 1  # a dry run removes nothing

    removed: list[str] = []

    async def leftovers(task_ids: list[str]) -> None:
        removed.extend(task_ids)

    done = asyncio.run(purge(store, month, now=later, remove_leftovers=leftovers))
    assert sorted(done.task_ids) == sorted(removed) == sorted([complete, canceled])
    assert done.sentence().startswith("removed 2 finished tasks")
    left = store.list_tasks(TaskFilter(tags={"keep": "me"}), 100, None, View.MINIMAL).tasks
    assert sorted(t["id"] for t in left) == sorted([running, queued])
    assert store.count_by_state() == {State.RUNNING: 1, State.QUEUED: 1}
    assert store.delete_finished([running, queued]) == 0  # active tasks are never deleted


def test_ages_name_their_unit() -> None:
    assert parse_age("30d") == timedelta(days=30) and parse_age("12h") == timedelta(hours=12)
    with pytest.raises(ValueError, match="30d"):
        parse_age("30")


def test_admin_purge_says_how_much_it_removed_and_takes_the_work_dirs(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'ktes.db'}")
    old_ms = int((datetime.now(UTC) - timedelta(days=40)).timestamp() * 1000)
    old_id, _ = new_id(old_ms)
    recent_id, recent_ms = new_id()
    executors = [Executor(image="alpine", command=["true"])]
    store.import_tasks(
        [
            Task(id=old_id, state=State.COMPLETE, creation_time=rfc3339(old_ms), executors=executors),
            Task(id=recent_id, state=State.COMPLETE, creation_time=rfc3339(recent_ms), executors=executors),
        ]
    )
    store.close()
    for task_id in (old_id, recent_id):
        (tmp_path / "work" / task_id / "data").mkdir(parents=True)
    env = {"KTES_DATA_DIR": str(tmp_path), "KTES_BACKEND": "local"}
    runner = CliRunner()

    dry = runner.invoke(app, ["admin", "purge", "--older-than", "30d", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would remove 1 finished tasks" in dry.output and (tmp_path / "work" / old_id).exists()

    real = runner.invoke(app, ["admin", "purge", "--older-than", "30d"], env=env)
    assert real.exit_code == 0, real.output
    assert "removed 1 finished tasks" in real.output
    assert not (tmp_path / "work" / old_id).exists() and (tmp_path / "work" / recent_id).exists()

    bad = runner.invoke(app, ["admin", "purge", "--older-than", "a month"], env=env)
    assert bad.exit_code != 0 and "--older-than" in bad.output


def test_a_store_made_by_the_first_schema_is_upgraded_and_keeps_its_tasks(sql_url: str) -> None:
    url = sql_url
    engine = make_engine(url, pool_size=1)
    config = alembic_config()
    with engine.begin() as conn:  # the schema of the first release, with a task in it
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        task_id, ms = new_id()
        doc = {"id": task_id, "state": "COMPLETE", "name": "kept", "creation_time": rfc3339(ms)}
        doc["executors"] = [{"image": "alpine", "command": ["true"]}]
        conn.execute(
            sa.text("INSERT INTO tasks (id, state, name, creation_time) VALUES (:id, 'COMPLETE', 'kept', :t)"),
            {"id": task_id, "t": rfc3339(ms)},
        )
        conn.execute(
            sa.text("INSERT INTO task_docs (task_id, doc) VALUES (:id, :doc)"),
            {"id": task_id, "doc": orjson.dumps(doc).decode()},
        )
        conn.execute(sa.text("INSERT INTO task_tags (task_id, key, value) VALUES (:id, 'k', 'v')"), {"id": task_id})
    engine.dispose()
    env = {"KTES_DATABASE_URL": url}
    runner = CliRunner()

    check = runner.invoke(app, ["db", "check"], env=env)
    assert check.exit_code == (0 if head_revision() == "0001" else 1), check.output
    upgraded = runner.invoke(app, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert head_revision() in upgraded.output
    assert runner.invoke(app, ["db", "check"], env=env).exit_code == 0

    store = open_store(url)
    try:
        task = store.get(task_id)
        assert (task.name, task.state) == ("kept", State.COMPLETE)
        assert [t["id"] for t in store.list_tasks(TaskFilter(tags={"k": "v"}), 10, None, View.MINIMAL).tasks] == [
            task_id
        ]
    finally:
        store.close()
    if url.startswith("postgresql"):  # ids compare as bytes (migration 0006), whatever the database's locale
        engine = make_engine(url, pool_size=1)
        with engine.connect() as conn:
            columns = "SELECT table_name, collation_name FROM information_schema.columns WHERE column_name = :name"
            ids = (
                conn.execute(sa.text(columns), {"name": "id"}).all()
                + conn.execute(sa.text(columns), {"name": "task_id"}).all()
            )
        engine.dispose()
        assert sorted(ids) == [("task_docs", "C"), ("task_tags", "C"), ("tasks", "C")]
