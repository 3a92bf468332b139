"""The task endpoints: create, get, list, cancel (POST ``:cancel``, and DELETE on the same path).

They are plain Starlette routes: parameters are parsed here (every error names its parameter), which costs
half as much per request as FastAPI's dependency injection on the hot read path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ktes.api.body import json_response, read_json
from ktes.api.params import page_size, task_filter
from ktes.api.redaction import redact_list_json, redact_task_json
from ktes.auth import access
from ktes.auth.file_access import check_file_urls
from ktes.auth.middleware import principal_of
from ktes.auth.principal import Principal
from ktes.capabilities import Capabilities
from ktes.config import Settings
from ktes.engine.commands import request_cancel
from ktes.store.base import Store, TaskFilter
from ktes.store.json_reads import AwaitedJsonReads, JsonListParts, JsonReads, OffersAwaitedReads
from ktes.tes import tes10
from ktes.tes.models import View
from ktes.tes.validation import Limits, validate_submission
from ktes.tes.views import parse_view

JSON = "application/json"
T = TypeVar("T")
_LIST_START = b'{"tasks":['
#: FULL reads in worker threads at once: more only fight over the interpreter lock with the event loop
LARGE_READS_AT_ONCE = 2


class OffLoop:
    """Runs reads that may be large in worker threads, at most ``limit`` at once (about the database pool's
    size: more would only wait there for a connection), so the event loop keeps serving small requests."""

    def __init__(self, limit: int) -> None:
        self._size = max(1, limit)
        self._limiter: anyio.CapacityLimiter | None = None  # made on first use, inside the event loop

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._size)
        return await anyio.to_thread.run_sync(call, *args, limiter=self._limiter)


class _DictReads:
    """:class:`JsonReads` for a store without the fast path: its documents, serialised here."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get_view_json(self, task_id: str, view: View, owner: str | None = None) -> bytes:
        return orjson.dumps(self._store.get_view(task_id, view, owner))

    def list_tasks_json(
        self, flt: TaskFilter, page_size: int, page_token: str | None, view: View, max_bytes: int | None = None
    ) -> bytes:
        page = self._store.list_tasks(flt, page_size, page_token, view, max_bytes)
        body: dict[str, object] = {"tasks": page.tasks}
        if page.next_page_token:
            body["next_page_token"] = page.next_page_token
        return orjson.dumps(body)


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_content_bytes=settings.max_content_bytes,
        max_executors=settings.max_executors,
        max_inputs=settings.max_inputs,
        max_outputs=settings.max_outputs,
        max_tags=settings.max_tags,
        backend_parameters_strict=settings.backend_parameters_strict,
    )


class TaskReader:
    """GetTask's answer for one caller: the stored bytes, limited to the caller's own tasks, with the owner tag
    for admins, URLs redacted and states shown as TES 1.0's when so set. Used by the route and by the fast path
    (``api/fast_get.py``), so both answer the same bytes.

    MINIMAL and BASIC reads run on the event loop: on SQLite they are answered in microseconds, and a thread
    hop would cost more; on PostgreSQL they are awaited (``awaited``, ktes.store.loop_reads), so the loop
    serves other requests while the server answers. FULL reads (a FULL document holds the inputs' content,
    possibly MiBs) run in worker threads, at most :data:`LARGE_READS_AT_ONCE` at once (``off_loop``, shared
    with ListTasks' FULL pages)."""

    def __init__(self, settings: Settings, store: Store, off_loop: OffLoop) -> None:
        self.store = store
        self.reads: JsonReads = store if isinstance(store, JsonReads) else _DictReads(store)
        self.off_loop = off_loop
        self.awaited: AwaitedJsonReads | None = store.awaited_reads() if isinstance(store, OffersAwaitedReads) else None
        self.as_tes_1_0 = settings.tes_states == "1.0"

    async def get(self, principal: Principal | None, task_id: str, view: View) -> bytes:
        scope, show_owner = access.owner_scope(principal), access.shows_owner(principal)
        if view is View.FULL:
            return await self.off_loop.run(self._one_task, task_id, view, scope, show_owner)
        if self.awaited is not None:
            body = await self.awaited.get_view_json_async(task_id, view, scope)
            if show_owner and view is not View.MINIMAL:  # the owner look-up is a synchronous read: off the loop
                return await run_in_threadpool(self._shown, body, view, show_owner)
            return self._shown(body, view, show_owner)
        return self._one_task(task_id, view, scope, show_owner)

    async def exists(self, task_id: str, owner: str | None) -> None:
        """Raise TaskNotFound unless ``task_id`` is a task (``owner``'s, when given)."""
        if self.awaited is not None:
            await self.awaited.get_view_json_async(task_id, View.MINIMAL, owner)
        else:
            self.reads.get_view_json(task_id, View.MINIMAL, owner)

    def _one_task(self, task_id: str, view: View, owner: str | None, show_owner: bool) -> bytes:
        return self._shown(self.reads.get_view_json(task_id, view, owner), view, show_owner)

    def _shown(self, body: bytes, view: View, show_owner: bool) -> bytes:
        """A task's stored body as this caller sees it (owner tag, redaction, TES 1.0 states)."""
        if view is not View.MINIMAL:
            if show_owner:
                body = access.task_with_owner(body, self.store.owners)
            body = redact_task_json(body)
        if self.as_tes_1_0:
            body = tes10.present_task_json(body, view)
        return body


def task_routes(
    prefix: str,
    settings: Settings,
    store: Store,
    capabilities: Capabilities,
    wake: Callable[[], None],
    reader: TaskReader | None = None,
) -> list[BaseRoute]:
    limits = limits_from(settings)
    as_tes_1_0 = settings.tes_states == "1.0"
    # FULL reads (possibly MiBs) and writes (which may wait for a lock) run in threads; MINIMAL and BASIC reads
    # on the loop (awaited on PostgreSQL: see TaskReader).
    reader = reader or TaskReader(settings, store, OffLoop(LARGE_READS_AT_ONCE))
    reads, off_loop = reader.reads, reader.off_loop

    async def create_task(request: Request) -> Response:
        principal = principal_of(request)
        raw = await read_json(request, settings.max_body_bytes)
        task = validate_submission(raw, capabilities, limits)
        access.refuse_owner_tag(task)
        task.owner = principal.name if principal is not None else None  # never what the request says
        limit = None
        if principal is not None:
            check_file_urls(task, principal.name, settings)
            limit = settings.user_max_active_tasks
        task_id = await run_in_threadpool(store.create, task, limit)  # OverUserLimit: 429 (api/errors.py)
        wake()
        return json_response({"id": task_id})

    def list_page(flt: TaskFilter, size: int, token: str | None, view: View, show_owner: bool) -> bytes:
        return page_shown(reads.list_tasks_json(flt, size, token, view, settings.list_page_max_bytes), view, show_owner)

    def page_shown(body: bytes, view: View, show_owner: bool) -> bytes:
        """A page's stored body as this caller sees it (owner tags, redaction, TES 1.0 states)."""
        if view is not View.MINIMAL:
            return list_page_shown(body, view, show_owner)
        if as_tes_1_0:
            body = tes10.present_list_json(body, view)
        return body

    def present_part(docs: list[bytes], view: View, show_owner: bool) -> bytes:
        """A part of a page's documents, changed as :func:`list_page` changes a whole page, joined by commas.
        A document that needs no change is not copied (``join`` of one returns it)."""
        if show_owner:  # one owner look-up for the part
            body = list_page_shown(_LIST_START + b",".join(docs) + b"]}", view, show_owner)
            assert body.startswith(_LIST_START) and body.endswith(b"]}")  # orjson writes {"tasks":[...]} so
            return body[len(_LIST_START) : -2]
        shown = [redact_task_json(doc) for doc in docs]
        if as_tes_1_0:
            shown = [tes10.present_task_json(doc, view) for doc in shown]
        return b",".join(shown)

    def list_page_shown(body: bytes, view: View, show_owner: bool) -> bytes:
        if show_owner:
            body = access.list_with_owner(body, store.owners)
        body = redact_list_json(body)
        if as_tes_1_0:
            body = tes10.present_list_json(body, view)
        return body

    async def streamed_page(
        parted: JsonListParts, flt: TaskFilter, size: int, token: str | None, view: View, show_owner: bool
    ) -> Response:
        """A page of FULL documents (input content can be MiBs each), read and sent a part at a time, each part
        in a worker thread: the page is never whole in memory, and the loop is never held for long. An error
        reading the first part (a bad page_token, the database down) is answered as usual."""
        parts = parted.list_tasks_json_parts(flt, size, token, view, settings.list_page_max_bytes)

        def next_part() -> tuple[bytes, str | None]:
            docs, end = next(parts)
            return (present_part(docs, view, show_owner) if docs else b""), end

        first, end = await off_loop.run(next_part)
        if end is not None:  # the whole page was one part (the usual case): sent as it is, not streamed
            return Response(_LIST_START + first + _list_end(end), media_type=JSON)

        async def body() -> AsyncIterator[bytes]:
            nonlocal end
            yield _LIST_START
            yield first
            comma = bool(first)
            while end is None:
                chunk, end = await off_loop.run(next_part)
                if chunk:
                    if comma:
                        yield b","
                    yield chunk
                    comma = True
            yield _list_end(end)

        return StreamingResponse(body(), media_type=JSON)

    async def list_tasks(request: Request) -> Response:
        principal = principal_of(request)
        query = request.query_params
        flt = task_filter(query)
        owner = access.list_owner(principal, query.get(access.OWNER_PARAM))
        if owner is not None:
            flt = dataclasses.replace(flt, owner=owner)
        if as_tes_1_0 and flt.state is not None:
            flt = dataclasses.replace(flt, also_states=tes10.filter_states(flt.state))
        size = page_size(query, settings.page_size_default, settings.page_size_max)
        view = parse_view(query.get("view"))
        token = query.get("page_token") or None
        show_owner = access.shows_owner(principal)
        if view is View.FULL and isinstance(reads, JsonListParts):
            return await streamed_page(reads, flt, size, token, view, show_owner)
        if view is View.FULL:  # a page of FULL documents may be large (input content can be MiBs): off the loop
            body = await off_loop.run(list_page, flt, size, token, view, show_owner)
        elif reader.awaited is not None:  # on a database server: the loop serves others until it answers
            stored = await reader.awaited.list_tasks_json_async(flt, size, token, view, settings.list_page_max_bytes)
            if show_owner and view is not View.MINIMAL:  # the owners' look-up is a synchronous read: off the loop
                body = await run_in_threadpool(page_shown, stored, view, show_owner)
            else:
                body = page_shown(stored, view, show_owner)
        else:  # in this process (SQLite): cheaper than a thread hop
            body = list_page(flt, size, token, view, show_owner)
        return Response(body, media_type=JSON)

    async def get_task(request: Request) -> Response:
        view = parse_view(request.query_params.get("view"))
        body = await reader.get(principal_of(request), request.path_params["task_id"], view)
        return Response(body, media_type=JSON)

    async def cancel_task(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        owner = access.owner_scope(principal_of(request))
        if owner is not None:
            await reader.exists(task_id, owner)  # another user's task: 404, like an unknown one
        await run_in_threadpool(request_cancel, store, task_id)
        wake()
        return Response(b"{}", media_type=JSON)

    return [
        Route(prefix + "/tasks", list_tasks, methods=["GET"], name="ListTasks"),
        Route(prefix + "/tasks", create_task, methods=["POST"], name="CreateTask"),
        Route(prefix + "/tasks/{task_id}", get_task, methods=["GET"], name="GetTask"),
        Route(prefix + "/tasks/{task_id}:cancel", cancel_task, methods=["POST", "DELETE"], name="CancelTask"),
    ]


def _list_end(token: str) -> bytes:
    """What closes a ListTasks body whose ``tasks`` were written out: the next page's token, if any."""
    return b'],"next_page_token":' + orjson.dumps(token) + b"}" if token else b"]}"
