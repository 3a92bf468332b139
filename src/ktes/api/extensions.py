"""ktes's own API beside TES, under ``/ktes/v1``: live executor output and a summary for the dashboard.

- ``GET /ktes/v1/tasks/{id}/logs?executor=0&stream=stdout&offset=0&follow=false``: executor output as
  chunked ``text/plain`` bytes from ``offset``; with ``follow=true`` the response stays open and carries new
  bytes as they are written, ending when the executor has ended (see :mod:`ktes.api.log_feeds`).
- ``GET /ktes/v1/summary``: task counts by state (one grouped read of the state index), the backend and its
  capacity, the queue length, and recent throughput.

They are ordinary routes of the app, so whatever protects the TES routes protects them too, and they see what
GetTask sees: a user reads only their own tasks' output (another user's task is a 404, like an unknown one)
and counts only their own tasks (admins: everyone's).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ktes.api.log_feeds import LogFeeds
from ktes.auth.access import owner_scope
from ktes.auth.middleware import principal_of
from ktes.backends.base import Backend, Stream
from ktes.errors import InvalidTask, TaskNotFound
from ktes.store.base import Store
from ktes.tes.models import State
from ktes.tes.states import TERMINAL

PREFIX = "/ktes/v1"
JSON = "application/json"
#: How far back "recent throughput" looks, and how often the summary samples the finished count.
THROUGHPUT_WINDOW_SECONDS = 15 * 60.0
THROUGHPUT_SAMPLE_SECONDS = 5.0


def _int_param(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidTask(name, f"must be a whole number (got {text!r})") from None
    if value < 0:
        raise InvalidTask(name, f"must be 0 or more (got {value})")
    return value


def _bool_param(request: Request, name: str) -> bool:
    text = (request.query_params.get(name) or "false").lower()
    if text not in ("true", "false", "1", "0"):
        raise InvalidTask(name, f"must be true or false (got {text!r})")
    return text in ("true", "1")


def _stream_param(request: Request) -> Stream:
    text = request.query_params.get("stream") or "stdout"
    if text == "stdout":
        return "stdout"
    if text == "stderr":
        return "stderr"
    raise InvalidTask("stream", f"must be stdout or stderr (got {text!r})")


class Throughput:
    """Tasks finished per minute over the last minutes, from samples of the finished count."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def observe(self, finished: int, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        if not self._samples or now - self._samples[-1][0] >= THROUGHPUT_SAMPLE_SECONDS:
            self._samples.append((now, finished))
        while len(self._samples) > 1 and now - self._samples[0][0] > THROUGHPUT_WINDOW_SECONDS:
            self._samples.popleft()
        then, finished_then = self._samples[0]
        seconds = now - then
        if seconds < THROUGHPUT_SAMPLE_SECONDS:
            return {"window_seconds": round(seconds), "finished": None, "per_minute": None}
        done = max(0, finished - finished_then)
        return {"window_seconds": round(seconds), "finished": done, "per_minute": round(done * 60 / seconds, 2)}


def extension_routes(store: Store, backend: Backend | None) -> list[BaseRoute]:
    feeds = LogFeeds(store, backend) if backend is not None else None
    throughput = Throughput()

    async def summary(request: Request) -> Response:
        # Counts are the caller's own tasks (admins: everyone's); queue length and throughput are the
        # service's (how busy it is), never naming a task or a user.
        owner = owner_scope(principal_of(request))
        counts = await run_in_threadpool(store.count_by_state)
        own = counts if owner is None else await run_in_threadpool(store.count_by_state, owner)
        body: dict[str, Any] = {
            "counts": {state.value: own.get(state, 0) for state in State if state is not State.UNKNOWN},
            "total": sum(own.values()),
            "queue_length": counts.get(State.QUEUED, 0),
            "throughput": throughput.observe(sum(n for s, n in counts.items() if s in TERMINAL)),
        }
        if backend is not None:
            body["backend"] = {"name": backend.name, "capacity": backend.capacity()}
        return Response(orjson.dumps(body), media_type=JSON)

    async def executor_logs(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        task = await run_in_threadpool(store.get, task_id)  # 404 for an unknown task
        owner = owner_scope(principal_of(request))
        if owner is not None and task.owner != owner:
            raise TaskNotFound(task_id)  # another user's task answers exactly like an unknown one
        index = _int_param(request, "executor", 0)
        if index >= len(task.executors):
            raise InvalidTask("executor", f"task {task_id} has {len(task.executors)} executor(s), numbered from 0")
        stream = _stream_param(request)
        offset = _int_param(request, "offset", 0)
        follow = _bool_param(request, "follow")
        if feeds is None:
            raise InvalidTask("follow", "this server runs no backend, so it holds no executor output")
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            feeds.read(task_id, index, stream, offset, follow),
            media_type="text/plain; charset=utf-8",
            headers=headers,
        )

    return [
        Route(PREFIX + "/summary", summary, methods=["GET"], name="KtesSummary"),
        Route(PREFIX + "/tasks/{task_id}/logs", executor_logs, methods=["GET"], name="KtesExecutorLogs"),
    ]
