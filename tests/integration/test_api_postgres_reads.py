"""The API on a PostgreSQL store: its costly reads (pages of documents, pages filtered by name or tag) wait on
the database server in worker threads, and the server keeps answering other requests meanwhile; many reads at
once still answer exactly what one does."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.unit.api_harness import BASE, running_api

pytestmark = pytest.mark.postgres


@contextmanager
def documents_locked(url: str) -> Iterator[threading.Event]:
    """Another session holds an exclusive lock on ``task_docs`` (every read of a document waits for it) until
    the event is set, or 20 s at most (so a server that waits on the loop unblocks and the test fails)."""
    release = threading.Event()
    locked = threading.Event()

    def hold() -> None:
        conninfo = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo) as conn:
            conn.execute("LOCK TABLE task_docs IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(20)
            conn.rollback()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(20), "could not lock task_docs"
        yield release
    finally:
        release.set()
        holder.join()


async def test_a_read_waiting_on_the_database_does_not_hold_up_other_requests(
    tmp_path: Path, new_postgres_database: str
) -> None:
    async with running_api(tmp_path, new_postgres_database) as api:
        task_id = await api.create(name="waiting", tags={"p": "1"})
        with documents_locked(new_postgres_database) as release:
            page_basic = asyncio.create_task(api.client.get(f"{BASE}/tasks", params={"view": "BASIC"}))
            tagged = asyncio.create_task(api.client.get(f"{BASE}/tasks", params={"tag_key": "p", "view": "BASIC"}))
            # neither page of documents can be read while the lock is held; MINIMAL reads need no document
            minimal = await asyncio.wait_for(api.client.get(f"{BASE}/tasks/{task_id}"), 15)
            listed = await asyncio.wait_for(api.client.get(f"{BASE}/tasks", params={"name_prefix": "wait"}), 15)
            assert not page_basic.done() and not tagged.done()
            release.set()
            page, by_tag = await asyncio.wait_for(asyncio.gather(page_basic, tagged), 30)
    assert minimal.json() == {"id": task_id, "state": "QUEUED"}
    assert listed.json() == {"tasks": [{"id": task_id, "state": "QUEUED"}]}
    assert [t["name"] for t in page.json()["tasks"]] == ["waiting"]
    assert [t["id"] for t in by_tag.json()["tasks"]] == [task_id]


async def test_many_reads_at_once_answer_what_each_does_alone(tmp_path: Path, new_postgres_database: str) -> None:
    async with running_api(tmp_path, new_postgres_database) as api:
        made = [await api.create(name=f"job-{i % 4}-{i}", tags={"group": f"g{i % 3}"}) for i in range(24)]
        queries = [
            {},
            {"view": "BASIC"},
            {"view": "FULL"},
            {"name_prefix": "job-2"},
            {"name_prefix": "job-2", "view": "BASIC", "page_size": "3"},
            {"tag_key": "group", "tag_value": "g1"},
            {"tag_key": "group", "tag_value": "g1", "name_prefix": "job-1", "view": "BASIC"},
            {"state": "QUEUED", "page_size": "5"},
        ]
        paths = [(f"{BASE}/tasks", q) for q in queries] + [
            (f"{BASE}/tasks/{task_id}", {"view": view}) for task_id in made[::5] for view in ("MINIMAL", "BASIC")
        ]
        alone = [(await api.client.get(path, params=params)).json() for path, params in paths]
        at_once = await asyncio.gather(*(api.client.get(path, params=params) for path, params in paths * 3))
    assert [response.json() for response in at_once] == alone * 3
    by_prefix = alone[queries.index({"name_prefix": "job-2"})]
    assert [t["id"] for t in by_prefix["tasks"]] == [made[i] for i in reversed(range(24)) if i % 4 == 2]
    by_tag_and_name = alone[6]["tasks"]
    assert [t["id"] for t in by_tag_and_name] == [made[i] for i in reversed(range(24)) if i % 4 == 1 and i % 3 == 1]
