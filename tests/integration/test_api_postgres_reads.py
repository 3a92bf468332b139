"""The API on a PostgreSQL store: a read that waits on the database server (GetTask, a page of documents, a
page filtered by name or tag) is awaited, and the server keeps answering other requests meanwhile; many reads
at once still answer exactly what one does; a read given up half-way leaves nothing behind for the next."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest

from ktes.auth.users_file import add_user
from ktes.store.sql import open_store
from ktes.tes.models import Task, View
from tests.unit.api_harness import BASE, running_api, task_doc

pytestmark = pytest.mark.postgres


@contextmanager
def documents_locked(url: str, table: str = "task_docs") -> Iterator[threading.Event]:
    """Another session holds an exclusive lock on ``table`` (every read of a document waits for it) until the
    event is set, or 20 s at most (so a server that waits on the loop unblocks and the test fails)."""
    release = threading.Event()
    locked = threading.Event()

    def hold() -> None:
        conninfo = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo) as conn:
            conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(20)
            conn.rollback()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(20), f"could not lock {table}"
        yield release
    finally:
        release.set()
        holder.join()


async def test_pages_waiting_on_the_database_do_not_hold_up_polls(tmp_path: Path, new_postgres_database: str) -> None:
    """More pages of documents than may be in flight at once wait on the database: GetTask, which clients
    poll, takes its turns in a lane of its own, and the server answers it and everything else meanwhile."""
    async with running_api(tmp_path, new_postgres_database, database_reads_at_once=2) as api:
        task_id = await api.create(name="waiting", tags={"p": "1"})
        with documents_locked(new_postgres_database) as release:
            queries = [{"view": "BASIC"}, {"tag_key": "p", "view": "BASIC"}, {"name_prefix": "wait", "view": "BASIC"}]
            pages = [asyncio.create_task(api.client.get(f"{BASE}/tasks", params=query)) for query in queries]
            # no page of documents can be read while the lock is held; MINIMAL reads need no document
            minimal = await asyncio.wait_for(api.client.get(f"{BASE}/tasks/{task_id}"), 15)
            info = await asyncio.wait_for(api.client.get(f"{BASE}/service-info"), 15)
            assert not any(page.done() for page in pages)
            release.set()
            answered = await asyncio.wait_for(asyncio.gather(*pages), 30)
    assert minimal.json() == {"id": task_id, "state": "QUEUED"}
    assert info.status_code == 200
    for page in answered:
        assert [t["name"] for t in page.json()["tasks"]] == ["waiting"]


async def test_a_get_task_waiting_on_the_database_does_not_hold_up_other_requests(
    tmp_path: Path, new_postgres_database: str
) -> None:
    async with running_api(tmp_path, new_postgres_database) as api:
        task_id = await api.create(name="waiting")
        with documents_locked(new_postgres_database) as release:
            basic = asyncio.create_task(api.client.get(f"{BASE}/tasks/{task_id}", params={"view": "BASIC"}))
            minimal = await asyncio.wait_for(api.client.get(f"{BASE}/tasks/{task_id}"), 15)
            info = await asyncio.wait_for(api.client.get(f"{BASE}/service-info"), 15)
            assert not basic.done()
            release.set()
            document = await asyncio.wait_for(basic, 30)
    assert minimal.json() == {"id": task_id, "state": "QUEUED"}
    assert info.status_code == 200
    assert document.json()["name"] == "waiting"


async def test_an_admins_owner_look_up_waiting_on_the_database_does_not_hold_up_other_requests(
    tmp_path: Path, new_postgres_database: str
) -> None:
    """An admin's BASIC read shows each task's owner, looked up in ``tasks`` after the document is read: while
    that look-up waits on the database, the server answers other requests."""
    users = tmp_path / "users"
    add_user(users, "root", "root-pw", rounds=4)
    settings = {"auth": "basic", "auth_users_file": users, "admins": ["root"]}
    async with running_api(tmp_path, new_postgres_database, **settings) as api:
        root = httpx.BasicAuth("root", "root-pw")
        made = await api.client.post(f"{BASE}/tasks", json=task_doc(name="waiting"), auth=root)
        task_id = made.json()["id"]
        with documents_locked(new_postgres_database, "tasks") as release:
            basic = asyncio.create_task(api.client.get(f"{BASE}/tasks/{task_id}", params={"view": "BASIC"}, auth=root))
            await waiting_on_a_lock(new_postgres_database)
            info = await asyncio.wait_for(api.client.get(f"{BASE}/service-info"), 15)
            assert not basic.done()
            release.set()
            document = await asyncio.wait_for(basic, 30)
    assert info.status_code == 200
    assert document.json()["tags"] == {"ktes.owner": "root"}


async def waiting_on_a_lock(url: str) -> None:
    """Until a statement of another session waits on a lock (a read held up by documents_locked), 20 s at most."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            row = await cursor.fetchone()
            if row is not None and row[0] > 0:
                return
            assert asyncio.get_running_loop().time() < deadline, "no read ever waited on the lock"
            await asyncio.sleep(0.05)


async def test_a_read_given_up_half_way_leaves_its_connection_to_no_one(new_postgres_database: str) -> None:
    """A client that goes away cancels its read while PostgreSQL is still answering it: that connection is
    closed, not handed to the next read, which would otherwise get the answer meant for the first."""
    store = open_store(new_postgres_database)
    try:
        first = store.create_many([_task("first")])[0]
        second = store.create_many([_task("second")])[0]
        with documents_locked(new_postgres_database) as release:
            given_up = asyncio.create_task(store.get_view_json_async(first, View.BASIC))
            await waiting_on_a_lock(new_postgres_database)
            given_up.cancel()
            with pytest.raises(asyncio.CancelledError):
                await given_up
            release.set()
        answers = [await store.get_view_json_async(second, View.BASIC) for _ in range(10)]
        assert {orjson.loads(body)["name"] for body in answers} == {"second"}
        assert orjson.loads(await store.get_view_json_async(first, View.MINIMAL)) == {"id": first, "state": "QUEUED"}
    finally:
        await store.close_async_reads()
        store.close()


def _task(name: str) -> Task:
    return Task.model_validate({"name": name, "executors": [{"image": "busybox", "command": ["true"]}]})


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
