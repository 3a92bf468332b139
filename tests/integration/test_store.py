"""The task store contract, run against every store: the memory fake, SQLite and a real PostgreSQL behave
alike (``any_store``); what only the SQL store has (migrations, reopening, JSON reads) on SQLite and
PostgreSQL (``store``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from ktes.errors import InvalidTask, TaskNotFound
from ktes.store.base import Store, TaskFilter
from ktes.store.memory import MemoryStore
from ktes.store.migrate import alembic_config
from ktes.store.sql import SqlStore, make_engine, open_store
from ktes.tes import views
from ktes.tes.ids import new_id, rfc3339
from ktes.tes.models import Executor, ExecutorLog, Input, State, Task, TaskLog, View, dump
from ktes.tes.validation import Limits
from ktes.tes.views import document
from tests.fixtures.postgres import new_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'ktes.db'}"
    postgres_url: str = request.getfixturevalue("postgres_url")
    return new_database(postgres_url)


@pytest.fixture
def store(url: str) -> Iterator[SqlStore]:
    store = open_store(url)
    yield store
    store.close()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Every Store implementation: the memory fake, and the SQL store on SQLite and on PostgreSQL."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'ktes.db'}"
    else:
        url = new_database(request.getfixturevalue("postgres_url"))
    store = open_store(url)
    yield store
    store.close()


def task(**fields: Any) -> Task:
    return Task(executors=[Executor(image="alpine", command=["true"])], **fields)


def ids(store: Store, flt: TaskFilter | None = None, size: int = 100, token: str | None = None) -> list[str]:
    return [t["id"] for t in store.list_tasks(flt or TaskFilter(), size, token, View.MINIMAL).tasks]


def test_create_sets_id_state_and_creation_time_without_touching_the_given_task(any_store: Store) -> None:
    store = any_store
    given = task(name="n", tags={"a": "1"})
    task_id = store.create(given)
    assert given.id is None and given.state is None
    stored = store.get(task_id)
    assert stored.id == task_id and stored.state == State.QUEUED and stored.creation_time
    assert stored.name == "n" and stored.tags == {"a": "1"}


def test_create_keeps_warning_logs(any_store: Store) -> None:
    store = any_store
    task_id = store.create(task(logs=[TaskLog(logs=[], outputs=[], system_logs=["dropped 'x'"])]))
    logs = store.get(task_id).logs
    assert logs is not None and logs[0].system_logs == ["dropped 'x'"]


def test_unknown_task(any_store: Store) -> None:
    store = any_store
    with pytest.raises(TaskNotFound):
        store.get("tnope")
    for view in View:
        with pytest.raises(TaskNotFound):
            store.get_view("tnope", view)
    with pytest.raises(TaskNotFound):
        store.transition("tnope", State.INITIALIZING)
    with pytest.raises(TaskNotFound):
        store.edit("tnope", lambda t: None)


def test_views(any_store: Store) -> None:
    store = any_store
    task_id = store.create(task(inputs=[Input(path="/a", content="c")]))
    assert store.get_view(task_id, View.MINIMAL) == {"id": task_id, "state": "QUEUED"}
    assert store.get_view(task_id, View.FULL)["inputs"] == [{"path": "/a", "type": "FILE", "content": "c"}]
    assert store.get_view(task_id, View.BASIC)["inputs"] == [{"path": "/a", "type": "FILE"}]


def test_transition_is_a_compare_and_set_on_the_state_table(any_store: Store) -> None:
    store = any_store
    task_id = store.create(task())
    assert store.transition(task_id, State.RUNNING) is None  # QUEUED -> RUNNING is not allowed
    assert store.get(task_id).state == State.QUEUED
    moved = store.transition(task_id, State.INITIALIZING)
    assert moved is not None and moved.state == State.INITIALIZING
    assert store.get_view(task_id, View.MINIMAL)["state"] == "INITIALIZING"
    assert store.get_view(task_id, View.FULL)["state"] == "INITIALIZING"
    assert ids(store, TaskFilter(state=State.INITIALIZING)) == [task_id]


def test_transition_applies_the_edit_in_the_same_step(any_store: Store) -> None:
    store = any_store
    task_id = store.create(task())

    def started(t: Task) -> None:
        t.logs = [TaskLog(logs=[ExecutorLog(exit_code=0, stdout="hi")], outputs=[], start_time="now")]

    store.transition(task_id, State.INITIALIZING, started)
    stored = store.get(task_id)
    assert stored.logs is not None and stored.logs[0].logs[0].stdout == "hi"


def test_a_failing_edit_changes_nothing(any_store: Store) -> None:
    store = any_store
    task_id = store.create(task())

    def broken(t: Task) -> None:
        t.description = "half done"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.transition(task_id, State.INITIALIZING, broken)
    assert store.get(task_id).state == State.QUEUED
    assert store.get(task_id).description is None


def test_edit_changes_the_document_but_never_the_state(any_store: Store) -> None:
    store = any_store
    task_id = store.create(task(tags={"a": "1"}))

    def sneaky(t: Task) -> None:
        t.description = "edited"
        t.state = State.COMPLETE
        t.tags = {"b": "2"}

    edited = store.edit(task_id, sneaky)
    assert edited.state == State.QUEUED
    assert store.get(task_id).description == "edited"
    assert store.get(task_id).state == State.QUEUED
    assert ids(store, TaskFilter(tags={"b": "2"})) == [task_id]
    assert ids(store, TaskFilter(tags={"a": ""})) == []


def test_only_one_of_many_racing_transitions_wins(any_store: Store) -> None:
    store = any_store
    task_id = store.create(task())
    results: list[Task | None] = []
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait()
        results.append(store.transition(task_id, State.INITIALIZING))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r is not None for r in results) == 1


def test_concurrent_edits_are_not_lost(any_store: Store) -> None:
    store = any_store
    task_id = store.create(task(tags={}))

    def add(i: int) -> None:
        def edit(t: Task) -> None:
            t.tags = {**(t.tags or {}), f"k{i}": "v"}

        store.edit(task_id, edit)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get(task_id).tags == {f"k{i}": "v" for i in range(8)}


def test_tasks_in_is_oldest_first_with_a_limit(any_store: Store) -> None:
    store = any_store
    first, second, third = (store.create(task()) for _ in range(3))
    store.transition(second, State.INITIALIZING)
    assert [t.id for t in store.tasks_in([State.QUEUED])] == [first, third]
    assert [t.id for t in store.tasks_in([State.QUEUED, State.INITIALIZING], limit=2)] == [first, second]
    assert store.tasks_in([State.COMPLETE]) == []


def test_filters_run_in_the_database(any_store: Store) -> None:
    store = any_store
    a = store.create(task(name="Alpha-1", tags={"p": "x", "q": ""}))
    b = store.create(task(name="alpha-2", tags={"p": "y"}))
    c = store.create(task(name="alpha-3"))
    store.transition(c, State.INITIALIZING)
    assert ids(store, TaskFilter(name_prefix="alpha")) == [c, b]
    assert ids(store, TaskFilter(name_prefix="Alpha")) == [a]
    assert ids(store, TaskFilter(state=State.QUEUED)) == [b, a]
    assert ids(store, TaskFilter(tags={"p": ""})) == [b, a]
    assert ids(store, TaskFilter(tags={"p": "x", "q": ""})) == [a]
    assert ids(store, TaskFilter(tags={"q": "something"})) == []
    assert ids(store, TaskFilter(name_prefix="alpha", state=State.QUEUED, tags={"p": "y"})) == [b]


def test_name_prefix_edge_cases(any_store: Store) -> None:
    store = any_store
    names = ["a%b", "a_b", "ab", "a\U0010ffffz", "a\U0010ffff", "a\ud7ffq", "a\ue000", "日本語"]
    by_name = {name: store.create(task(name=name)) for name in names}
    for prefix in ["a%", "a_", "a\U0010ffff", "a\ud7ff", "日本", "a"]:
        expected = {by_name[n] for n in names if n.startswith(prefix)}
        assert set(ids(store, TaskFilter(name_prefix=prefix))) == expected, prefix


def test_keyset_pages(store: SqlStore) -> None:
    made = store.create_many([task(tags={"even": str(i % 2 == 0)}) for i in range(7)])
    page = store.list_tasks(TaskFilter(tags={"even": "True"}), 2, None, View.BASIC)
    walked = [t["id"] for t in page.tasks]
    while page.next_page_token:
        store.create(task(tags={"even": "True"}))  # arrivals do not disturb the walk
        page = store.list_tasks(TaskFilter(tags={"even": "True"}), 2, page.next_page_token, View.BASIC)
        walked += [t["id"] for t in page.tasks]
    assert walked == list(reversed(made[0::2]))


def test_a_foreign_token_is_invalid(any_store: Store) -> None:
    store = any_store
    with pytest.raises(InvalidTask) as raised:
        store.list_tasks(TaskFilter(), 10, "not-ours", View.MINIMAL)
    assert raised.value.field == "page_token"


def test_reopening_keeps_tasks_and_migrations_run_once(url: str) -> None:
    first = open_store(url)
    task_id = first.create(task(name="kept"))
    first.close()
    again = open_store(url)
    assert again.get(task_id).name == "kept"
    again.close()


def test_the_schema_is_migrated_by_alembic(store: SqlStore) -> None:
    with store.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_tasks_stored_before_an_upgrade_read_the_same_after_it(url: str) -> None:
    engine = make_engine(url)
    config = alembic_config()
    with engine.execution_options(ktes_write=True).begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    # Written as the first schema holds them (today's store writes columns that schema does not have).
    rich, ms = new_id()
    stored = task(
        id=rich,
        state=State.QUEUED,
        creation_time=rfc3339(ms),
        name="rich",
        inputs=[Input(path="/a", content="x" * 100_000)],
        tags={"k": "v"},
    )
    doc = orjson.dumps(document(stored))
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO tasks (id, state, name, creation_time) VALUES (:id, 'QUEUED', 'rich', :t)"),
            {"id": rich, "t": stored.creation_time},
        )
        conn.execute(
            sa.text("INSERT INTO task_docs (task_id, doc, basic) VALUES (:id, :doc, :basic)"),
            {"id": rich, "doc": doc.decode(), "basic": views.basic_json(doc).decode()},
        )
        conn.execute(sa.text("INSERT INTO task_tags (task_id, key, value) VALUES (:id, 'k', 'v')"), {"id": rich})
    engine.dispose()
    full, basic = doc, views.basic_json(doc)
    store = open_store(url)
    assert store.get_view_json(rich, View.FULL) == full
    assert store.get_view_json(rich, View.BASIC) == basic
    assert ids(store, TaskFilter(tags={"k": "v"})) == [rich]
    store.close()


def test_import_keeps_ids_states_and_times(store: SqlStore) -> None:
    task_id, ms = new_id()
    done = task(id=task_id, state=State.COMPLETE, creation_time=rfc3339(ms), tags={"t": "1"})
    assert store.import_tasks([done]) == [task_id]
    assert dump(store.get(task_id)) == document(done)  # as imported, in its complete form
    assert ids(store, TaskFilter(state=State.COMPLETE, tags={"t": "1"})) == [task_id]
    with pytest.raises(ValueError, match="needs its id"):
        store.import_tasks([task()])


def test_json_reads_match_the_documents(store: SqlStore) -> None:
    plain = store.create(task(name="plain", tags={"k": "v"}))
    rich = store.create(task(name="rich", inputs=[Input(path="/a", content="c")], tags={"k": "v"}))

    def ran(t: Task) -> None:
        t.logs = [TaskLog(logs=[ExecutorLog(exit_code=0, stdout="o")], outputs=[], system_logs=["s"])]

    store.transition(rich, State.INITIALIZING, ran)
    for view in View:
        for task_id in (plain, rich):
            assert orjson.loads(store.get_view_json(task_id, view)) == store.get_view(task_id, view)
        flt = TaskFilter(tags={"k": "v"})
        page = store.list_tasks(flt, 1, None, view)
        body = orjson.loads(store.list_tasks_json(flt, 1, None, view))
        assert body == {"tasks": page.tasks, "next_page_token": page.next_page_token}
        last = orjson.loads(store.list_tasks_json(flt, 1, page.next_page_token, view))
        assert last == {"tasks": store.list_tasks(flt, 1, page.next_page_token, view).tasks}
    with pytest.raises(TaskNotFound):
        store.get_view_json("tnope", View.FULL)


@pytest.mark.parametrize("common_from", [1, 5, 10_000])
def test_common_and_rare_name_prefixes_page_alike(store: SqlStore, common_from: int) -> None:
    store.common_prefix_rows = common_from  # which plan SQLite uses; the answer must not change
    made = store.create_many([task(name=f"run-{i % 3}") for i in range(30)])
    expected = [i for n, i in zip([f"run-{k % 3}" for k in range(30)], made, strict=True) if n == "run-1"]
    flt = TaskFilter(name_prefix="run-1")
    walked: list[str] = []
    token = None
    while True:
        page = store.list_tasks(flt, 4, token, View.MINIMAL)
        walked += [t["id"] for t in page.tasks]
        token = page.next_page_token
        if not token:
            break
    assert walked == list(reversed(expected))


def test_the_largest_valid_name_and_tags_can_be_stored(any_store: Store) -> None:
    store = any_store
    limits = Limits()
    big = "é" * (limits.max_name_bytes // 2)
    tag = "€" * (limits.max_tag_bytes // 3)
    task_id = store.create(task(name=big, tags={tag: tag, "x": tag}))
    assert ids(store, TaskFilter(name_prefix=big, tags={tag: tag})) == [task_id]


def test_ids_that_are_not_ours_are_simply_not_found(store: SqlStore) -> None:
    for weird in ["", "x" * 5000, "t\x00", "'; DROP TABLE tasks; --"]:
        with pytest.raises(TaskNotFound):
            store.get_view_json(weird, View.FULL)
        with pytest.raises(TaskNotFound):
            store.transition(weird, State.CANCELING)


def test_documents_an_older_ktes_stored_read_complete_after_the_upgrade(url: str) -> None:
    """An older ktes left empty arrays, maps and default types out of the stored text; migration 0002_complete
    rewrites it once, so reads (which serve the stored text) are complete without any work per read."""
    task_id, ms = new_id()
    old = {
        "id": task_id,
        "state": "COMPLETE",
        "inputs": [{"path": "/in", "content": "hello"}],
        "executors": [{"image": "busybox", "command": ["true"]}],
        "logs": [{"logs": [{"exit_code": 0, "stdout": "x"}], "outputs": []}],
        "creation_time": rfc3339(ms),
    }
    engine = make_engine(url)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(
            sa.text("INSERT INTO tasks (id, state, name, creation_time) VALUES (:id, 'COMPLETE', NULL, :t)"),
            {"id": task_id, "t": old["creation_time"]},
        )
        conn.execute(
            sa.text("INSERT INTO task_docs (task_id, doc, basic) VALUES (:id, :doc, NULL)"),
            {"id": task_id, "doc": orjson.dumps(old).decode()},
        )
    engine.dispose()
    store = open_store(url)
    try:
        full = orjson.loads(store.get_view_json(task_id, View.FULL))
        assert full["outputs"] == [] and full["volumes"] == [] and full["tags"] == {}
        assert full["inputs"] == [{"path": "/in", "type": "FILE", "content": "hello"}]
        assert full["executors"][0]["env"] == {}
        basic = orjson.loads(store.get_view_json(task_id, View.BASIC))
        assert basic["inputs"] == [{"path": "/in", "type": "FILE"}] and "stdout" not in basic["logs"][0]["logs"][0]
        assert orjson.loads(store.list_tasks_json(TaskFilter(), 10, None, View.BASIC))["tasks"] == [basic]
    finally:
        store.close()
