"""ListTasks' byte budget in the SQL store, on SQLite and on a real PostgreSQL: the same pages on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from ktes.store.base import TaskFilter
from ktes.store.sql import SqlStore, open_store
from ktes.tes.models import Executor, Input, Task, View
from tests.fixtures.postgres import new_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ktes.db'}"
    else:
        url = new_database(request.getfixturevalue("postgres_url"))
    opened = open_store(url)
    yield opened
    opened.close()


def test_pages_stop_at_the_budget_and_tokens_lead_through_every_task(store: SqlStore) -> None:
    created = []
    for i in range(15):
        content = "x" * (30_000 if i % 4 == 0 else 50)
        created.append(
            store.create(
                Task(
                    executors=[Executor(image="a", command=["b"])],
                    inputs=[Input(path="/i", content=content)],
                    tags={"t": "1"},
                )
            )
        )
    for view in (View.BASIC, View.FULL):
        for flt in (TaskFilter(), TaskFilter(tags={"t": "1"})):
            seen: list[str] = []
            token = None
            pages = 0
            while True:
                body = orjson.loads(store.list_tasks_json(flt, 2047, token, view, max_bytes=40_000))
                page = store.list_tasks(flt, 2047, token, view, max_bytes=40_000)
                assert [t["id"] for t in body["tasks"]] == [t["id"] for t in page.tasks]
                assert len(orjson.dumps(body["tasks"])) <= 40_000 + 31_000
                seen += [t["id"] for t in body["tasks"]]
                pages += 1
                token = body.get("next_page_token")
                assert token == page.next_page_token
                if not token:
                    break
            assert seen == list(reversed(created))
            assert pages > 1 if view is View.FULL else pages >= 1


def test_a_page_read_in_parts_is_the_page_read_whole(store: SqlStore) -> None:
    """FULL pages are sent in parts of about a MiB (so one of huge tasks is never whole in memory): the parts
    hold the same tasks and hand out the same token as the page read at once, whatever the part size."""
    for i in range(15):
        content = "x" * (30_000 if i % 4 == 0 else 50)
        store.create(Task(executors=[Executor(image="a", command=["b"])], inputs=[Input(path="/i", content=content)]))
    for view in (View.BASIC, View.FULL):
        for budget in (None, 40_000, 100):
            for part_bytes in (1, 10_000, 1 << 20):
                token = None
                while True:
                    whole = orjson.loads(store.list_tasks_json(TaskFilter(), 6, token, view, max_bytes=budget))
                    parts = list(store.list_tasks_json_parts(TaskFilter(), 6, token, view, budget, part_bytes))
                    docs = [doc for part, _ in parts for doc in part]
                    end = parts[-1][1]
                    assert all(last is None for _, last in parts[:-1]) and end is not None
                    assert [orjson.loads(doc) for doc in docs] == whole["tasks"], (view, budget, part_bytes)
                    assert end == whole.get("next_page_token", ""), (view, budget, part_bytes)
                    token = end
                    if not token:
                        break
