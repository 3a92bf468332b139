"""The owner column on both stores: migration of an existing database, owner-limited reads, and fair turns."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from ktes.errors import OverUserLimit, TaskNotFound
from ktes.store.base import TaskFilter
from ktes.store.migrate import alembic_config
from ktes.store.sql import make_engine, open_store
from ktes.tes.models import Executor, State, Task, View
from tests.fixtures.postgres import new_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ktes.db'}"
    return new_database(request.getfixturevalue("postgres_url"))


def owned(owner: str | None, name: str = "t") -> Task:
    return Task(name=name, executors=[Executor(image="a", command=["b"])], owner=owner)


def test_tasks_stored_before_the_owner_column_belong_to_no_one(url: str) -> None:
    engine = make_engine(url)
    config = alembic_config()
    with engine.execution_options(ktes_write=True).begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(
            sa.text("INSERT INTO tasks (id, state, name, creation_time) VALUES (:i, 'QUEUED', 'old', 'x')"),
            {"i": "t" + "1" * 26},
        )
        conn.execute(
            sa.text("INSERT INTO task_docs (task_id, doc) VALUES (:i, :d)"),
            {"i": "t" + "1" * 26, "d": '{"id":"t' + "1" * 26 + '","state":"QUEUED","name":"old","executors":[]}'},
        )
    engine.dispose()
    store = open_store(url)  # migrates to the newest revision
    try:
        old = "t" + "1" * 26
        assert store.get(old).owner is None
        assert store.owners([old]) == {old: None}
        with pytest.raises(TaskNotFound):
            store.get_view_json(old, View.BASIC, owner="alice")
        assert [t["id"] for t in store.list_tasks(TaskFilter(), 10, None, View.MINIMAL).tasks] == [old]
        assert store.list_tasks(TaskFilter(owner="alice"), 10, None, View.MINIMAL).tasks == []
    finally:
        store.close()


def test_owner_limited_reads_pages_counts_and_turns(url: str) -> None:
    store = open_store(url)
    try:
        alices = [store.create(owned("alice", f"a{i}")) for i in range(5)]
        bobs = store.create(owned("bob"))
        assert store.get(bobs).owner == "bob"
        for view in View:
            assert store.get_view_json(bobs, view, owner="bob")
            with pytest.raises(TaskNotFound):
                store.get_view_json(bobs, view, owner="alice")
        first = store.list_tasks(TaskFilter(owner="alice"), 2, None, View.MINIMAL)
        second = store.list_tasks(TaskFilter(owner="alice"), 2, first.next_page_token, View.MINIMAL)
        assert [t["id"] for t in first.tasks + second.tasks] == alices[::-1][:4]
        assert store.count_active("alice") == 5 and store.count_active("carol") == 0
        assert store.transition(alices[0], State.CANCELING) is not None
        assert store.transition(alices[0], State.CANCELED) is not None
        assert store.count_active("alice") == 4
        turns = [t.id for t in store.queued_in_turns(3)]
        assert turns == [alices[1], bobs, alices[2]]
        started = store.transition(alices[1], State.INITIALIZING)
        assert started is not None and started.owner == "alice"
        assert {t.owner for t in store.tasks_in({State.QUEUED})} == {"alice", "bob"}
    finally:
        store.close()


def test_two_replicas_creating_at_once_never_pass_the_per_user_limit(url: str) -> None:
    # Two stores on one database are two API replicas (separate connection pools; on SQLite, separate
    # process-local locks): 24 creates for alice at once, through both, against a limit of 5.
    replicas = [open_store(url), open_store(url)]
    start = threading.Barrier(24)
    accepted: list[str] = []
    refused: list[OverUserLimit] = []

    def create(index: int) -> None:
        start.wait()
        try:
            accepted.append(replicas[index % 2].create(owned("alice"), max_active=5))
        except OverUserLimit as exc:
            refused.append(exc)

    try:
        threads = [threading.Thread(target=create, args=(i,)) for i in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(accepted) == 5 and len(refused) == 19
        assert refused[0].limit == 5
        assert replicas[0].count_active("alice") == 5
        assert replicas[1].create(owned("bob"), max_active=5)  # the limit is per user
        assert replicas[0].create(owned("alice"))  # without a limit (auth off): no check
    finally:
        for replica in replicas:
            replica.close()


def test_whose_turn_it_is_is_kept_in_the_database(url: str) -> None:
    store = open_store(url)
    alices = [store.create(owned("alice", f"a{i}")) for i in range(2)]
    bobs = [store.create(owned("bob", f"b{i}")) for i in range(2)]
    unowned = store.create(owned(None, "before auth"))
    try:
        assert [t.id for t in store.queued_in_turns(10)] == [alices[0], bobs[0], unowned, alices[1], bobs[1]]
        assert store.transition(alices[0], State.INITIALIZING) is not None
    finally:
        store.close()
    store = open_store(url)  # a restart: alice was served last, so she goes last in each turn
    try:
        assert [t.id for t in store.queued_in_turns(10)] == [bobs[0], unowned, alices[1], bobs[1]]
        assert store.transition(unowned, State.INITIALIZING) is not None
        assert store.transition(bobs[0], State.INITIALIZING) is not None
        assert [t.id for t in store.queued_in_turns(10)] == [alices[1], bobs[1]]
        assert [t.id for t in store.queued_in_turns(1)] == [alices[1]]
    finally:
        store.close()
