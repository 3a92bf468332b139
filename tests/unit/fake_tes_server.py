"""A small fake TES server for the CLI's tests, served over real HTTP on 127.0.0.1 by uvicorn in a thread.

Tasks "run" one step per GET: QUEUED -> INITIALIZING -> RUNNING -> the end their executor asks for:
- ``echo ARGS...``: COMPLETE, stdout ``ARGS\\n`` (``printf TEXT``: stdout ``TEXT``);
- ``fail N``: EXECUTOR_ERROR, exit code N, stderr ``failing\\n``;
- image ``missing:1``: SYSTEM_ERROR, system log ``image missing:1 not found``;
- ``sleep ...``: stays RUNNING until canceled.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}
_STEPS = ["QUEUED", "INITIALIZING", "RUNNING"]


@dataclass
class FakeTes:
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the largest page the server hands out (small, so the client must follow page tokens)
    max_page_size: int = 2
    requests: list[str] = field(default_factory=list)
    url: str = ""

    def new_id(self) -> str:
        return f"task-{len(self.tasks) + 1:04d}"

    def advance(self, task: dict[str, Any]) -> None:
        state = task["state"]
        if state in TERMINAL:
            return
        executor = task["executors"][0]
        command = executor["command"]
        if state != "RUNNING":
            task["state"] = _STEPS[_STEPS.index(state) + 1]
            return
        if command and command[0] == "sleep":
            return
        start = "2024-05-01T12:00:00+00:00"
        end = "2024-05-01T12:00:01.5+00:00"
        if executor["image"] == "missing:1":
            task["state"] = "SYSTEM_ERROR"
            task["logs"] = [{"logs": [], "outputs": [], "system_logs": ["image missing:1 not found"]}]
            return
        if command[0] == "fail":
            code = int(command[1])
            log = {"exit_code": code, "stdout": "", "stderr": "failing\n", "start_time": start, "end_time": end}
            task["state"] = "EXECUTOR_ERROR"
            system_logs = ["ran on the fake", f"executor 0 exited with code {code}"]  # as ktes says it
        else:
            stdout = command[1] if command[0] == "printf" else " ".join(command[1:]) + "\n"
            log = {"exit_code": 0, "stdout": stdout, "stderr": "", "start_time": start}
            log["end_time"] = end
            task["state"] = "COMPLETE"
            system_logs = ["ran on the fake"]
        task["logs"] = [
            {
                "logs": [log],
                "outputs": [],
                "start_time": start,
                "end_time": end,
                "metadata": {"host": "fake"},
                "system_logs": system_logs,
            }
        ]


def shaped(task: dict[str, Any], view: str) -> dict[str, Any]:
    if view == "MINIMAL":
        return {"id": task["id"], "state": task["state"]}
    document = {k: v for k, v in task.items() if v is not None}
    if view == "BASIC":
        document["inputs"] = [{k: v for k, v in i.items() if k != "content"} for i in task.get("inputs") or []]
        document["logs"] = [
            {
                **{k: v for k, v in attempt.items() if k != "system_logs"},
                "logs": [{k: v for k, v in log.items() if k not in ("stdout", "stderr")} for log in attempt["logs"]],
            }
            for attempt in task.get("logs") or []
        ]
        if not task.get("inputs"):
            del document["inputs"]
    return document


def build_app(fake: FakeTes) -> FastAPI:
    app = FastAPI()

    def not_found(task_id: str) -> JSONResponse:
        return JSONResponse({"msg": f"task {task_id} not found", "field": "id"}, status_code=404)

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        fake.requests.append(f"{request.method} {request.url.path}?{request.url.query}")
        return await call_next(request)

    @app.get("/ga4gh/tes/v1/service-info")
    def service_info() -> dict[str, Any]:
        return {"id": "fake", "name": "fake", "type": {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"}}

    @app.post("/ga4gh/tes/v1/tasks")
    async def create(request: Request) -> Any:
        body = await request.json()
        if not body.get("executors"):
            return JSONResponse({"msg": "a task needs at least one executor", "field": "executors"}, 400)
        task_id = fake.new_id()
        created = datetime(2024, 5, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=len(fake.tasks))
        fake.tasks[task_id] = {
            **body,
            "id": task_id,
            "state": "QUEUED",
            "creation_time": created.isoformat(),
        }
        return {"id": task_id}

    @app.post("/ga4gh/tes/v1/tasks/{task_id}:cancel")
    def cancel(task_id: str) -> Any:
        task = fake.tasks.get(task_id)
        if task is None:
            return not_found(task_id)
        if task["state"] not in TERMINAL:
            task["state"] = "CANCELED"
        return {}

    @app.get("/ga4gh/tes/v1/tasks/{task_id}")
    def get(task_id: str, view: str = "MINIMAL") -> Any:
        task = fake.tasks.get(task_id)
        if task is None:
            return not_found(task_id)
        fake.advance(task)
        return shaped(task, view)

    @app.get("/ga4gh/tes/v1/tasks")
    def list_tasks(request: Request) -> Any:
        query = request.query_params
        keys, values = query.getlist("tag_key"), query.getlist("tag_value")
        wanted = [(k, values[i] if i < len(values) else None) for i, k in enumerate(keys)]
        found = []
        for task in sorted(fake.tasks.values(), key=lambda t: t["creation_time"], reverse=True):
            tags = task.get("tags") or {}
            if query.get("state") and task["state"] != query["state"]:
                continue
            if "name_prefix" in query and not (task.get("name") or "").startswith(query["name_prefix"]):
                continue
            if any(k not in tags or (v is not None and tags[k] != v) for k, v in wanted):
                continue
            found.append(task)
        size = min(int(query.get("page_size", 256)), fake.max_page_size)
        start = int(query.get("page_token") or 0)
        page = found[start : start + size]
        answer: dict[str, Any] = {"tasks": [shaped(t, query.get("view", "MINIMAL")) for t in page]}
        if start + size < len(found):
            answer["next_page_token"] = str(start + size)
        return answer

    return app


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def fake_tes() -> Iterator[FakeTes]:
    fake = FakeTes()
    with serve(build_app(fake)) as url:
        fake.url = url
        yield fake
