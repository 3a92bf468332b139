"""The dashboard's pages and ktes's own API beside TES (summary, executor output), in process."""

from __future__ import annotations

from pathlib import Path

import httpx

from ktes.api.app import create_app
from ktes.config import Settings
from ktes.store.sql import open_store
from ktes.tes.models import Executor, State, Task
from tests.unit.api_harness import CAPABILITIES, running_api
from tests.unit.test_log_feeds import GrowingOutput


async def test_a_browser_at_the_root_is_sent_to_the_dashboard(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        response = await api.client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/"
        assert (await api.client.get("/")).json() == {"tes": "/ga4gh/tes/v1", "ui": "/ui/"}
        assert (await api.client.get("/ui")).headers["location"] == "/ui/"


async def test_pages_ship_their_assets_and_forbid_everything_else(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        for path in ("/ui/", "/ui/service", "/ui/tasks/t01abc"):
            page = await api.client.get(path)
            assert page.status_code == 200
            csp = page.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "://" not in page.text  # nothing from another site
            for asset in ("/ui/assets/app.js", "/ui/assets/style.css"):
                assert asset in page.text
        assert (await api.client.get("/ui/assets/app.js")).headers["content-type"].startswith("text/javascript")
        assert (await api.client.get("/ui/assets/../../etc/passwd")).status_code == 404


async def test_a_task_id_in_the_page_path_is_escaped(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        page = await api.client.get('/ui/tasks/"><script>alert(1)</script>')
        assert "<script>alert(1)" not in page.text


async def test_the_summary_counts_tasks_by_state(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        for _ in range(3):
            await api.create()
        done = await api.create()
        api.store.transition(done, State.CANCELING)
        api.store.transition(done, State.CANCELED)
        summary = (await api.client.get("/ktes/v1/summary")).json()
        assert summary["counts"]["QUEUED"] == 3
        assert summary["counts"]["CANCELED"] == 1
        assert summary["counts"]["RUNNING"] == 0
        assert summary["total"] == 4
        assert summary["queue_length"] == 3
        assert "backend" not in summary  # this app has none


def test_count_by_state_is_one_grouped_read(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'ktes.db'}")
    ids = store.create_many([Task(executors=[Executor(image="a", command=["b"])]) for _ in range(5)])
    store.transition(ids[0], State.INITIALIZING)
    assert store.count_by_state() == {State.QUEUED: 4, State.INITIALIZING: 1}
    with store.engine.connect() as conn:
        plan = " ".join(
            str(row)
            for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN SELECT state, count(*) FROM tasks GROUP BY state")
        )
    assert "ix_tasks_state_id" in plan  # from the state index alone
    mine = store.create(Task(executors=[Executor(image="a", command=["b"])], owner="alice"))
    assert store.count_by_state("alice") == {State.QUEUED: 1} and store.get(mine).owner == "alice"
    with store.engine.connect() as conn:
        query = "EXPLAIN QUERY PLAN SELECT state, count(*) FROM tasks WHERE owner = 'alice' GROUP BY state"
        plan = " ".join(str(row) for row in conn.exec_driver_sql(query))
    assert "USING COVERING INDEX ix_tasks_owner" in plan or "USING COVERING INDEX ix_tasks_state_owner" in plan
    store.close()


async def test_executor_output_is_served_and_its_parameters_are_checked(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'ktes.db'}")
    backend = GrowingOutput()
    backend.write(b"hello\n")
    app = create_app(Settings(data_dir=tmp_path), store, CAPABILITIES, backend=backend)  # type: ignore[arg-type]
    task_id = store.create(Task(executors=[Executor(image="a", command=["b"])]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        url = f"/ktes/v1/tasks/{task_id}/logs"
        response = await client.get(url, params={"offset": 2})
        assert response.status_code == 200
        assert response.text == "llo\n"
        assert response.headers["content-type"].startswith("text/plain")
        for params, field in (
            ({"executor": 1}, "executor"),
            ({"executor": "x"}, "executor"),
            ({"stream": "stdin"}, "stream"),
            ({"offset": -1}, "offset"),
            ({"follow": "maybe"}, "follow"),
        ):
            bad = await client.get(url, params=params)
            assert bad.status_code == 400 and bad.json()["field"] == field, (params, bad.text)
        missing = await client.get("/ktes/v1/tasks/t01m8r46rnhcqp3se65xzpna5x4/logs")
        assert missing.status_code == 404
        summary = (await client.get("/ktes/v1/summary")).json()
        assert summary["backend"]["name"] == "fake"
    store.close()
